"""After-sales tickets: multi-channel intake, the workflow state machine, routing and SLA clocks.

One concept per module: ``states`` (status names), ``models`` (tables), ``calendar`` (business
time), ``policy`` (SLA policies and routing config), ``channels`` (per-channel payloads),
``intake``, ``evidence``, ``workflow``, ``merging``, ``contact``, ``reply_window`` (WeChat's
48 h window), ``routing``, ``manual_assignment``, ``shifts`` (planned shifts), ``sla``,
``sla_watch``. docs/tickets.md.
"""
