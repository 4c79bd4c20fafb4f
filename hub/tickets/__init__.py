"""After-sales tickets: multi-channel intake, the workflow state machine, routing and SLA clocks.

One concept per module: ``states`` (status names), ``models`` (tables), ``calendar`` (business
time), ``policy`` (SLA policies and routing config), ``channels`` (per-channel payloads),
``intake``, ``evidence``, ``workflow``, ``contact``, ``routing``, ``sla``. docs/tickets.md.
"""
