"""The notifier: an RQ worker that turns ``SendEmail`` commands into email and reports back.

``jobs`` decodes each job and sends it at most once, ``rendering`` fills the Jinja2 templates,
``mailer`` speaks SMTP, ``ledger`` remembers what was sent, ``runtime`` holds the per-process
resources and ``worker`` is the entry point behind ``handoff worker notifier``.
"""
