"""Everything ``handoff dev`` needs to run Handoff on one machine: a private Redis server, an
SMTP catcher and a supervisor for the service processes. Tests use the same pieces."""
