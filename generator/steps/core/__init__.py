"""What every step shares, whatever engine deploys: the resolved manifest (config), the target transport
(target, over transport), per-service locks (lock) and who holds one (holder), the audit log (audit),
step helpers (steplib, with names and report_text), the plan hand-off (handoff), `depends_on` order
(order) and the configuration fingerprint (runconfig). Stdlib only.
"""
