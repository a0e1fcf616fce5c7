"""The example data's distinct users per customer and SKU (the sandbox's default fixture and
mappings/ are built around them), shared by the sandbox and ZeroTek client tests."""

# Last billing period as of 2026-11-24: 2026-10-16..2026-11-15.
LAST_USAGE = {
    "zt-0001": {"OKTA-SSO": 42, "OKTA-MFA": 42},
    "zt-0002": {"OKTA-SSO": 12},
    "zt-0003": {"OKTA-SSO": 18, "OKTA-MFA": 18, "OKTA-LCM": 6},
    "zt-0004": {"OKTA-SSO": 27},
    "zt-0005": {"OKTA-SSO": 60, "OKTA-UD": 60, "OKTA-MFA": 15},
    "zt-0006": {"OKTA-SSO": 9, "OKTA-WF": 2, "OKTA-PAM": 3},
    "zt-0007": {"OKTA-WF": 4, "OKTA-SSO": 4},
    "zt-0099": {"OKTA-SSO": 5},
}
# Current period as of 2026-11-24: 2026-11-16..2026-11-24 (joiners after Nov 15 count only
# here; see the table in reconciler/sandbox/fixtures.py).
CURRENT_USAGE = {
    "zt-0001": {"OKTA-SSO": 43, "OKTA-MFA": 41},
    "zt-0002": {"OKTA-SSO": 12},
    "zt-0003": {"OKTA-SSO": 19, "OKTA-MFA": 17, "OKTA-LCM": 7},
    "zt-0004": {"OKTA-SSO": 26},
    "zt-0005": {"OKTA-SSO": 60, "OKTA-UD": 60, "OKTA-MFA": 16},
    "zt-0006": {"OKTA-SSO": 10, "OKTA-WF": 2, "OKTA-PAM": 3},
    "zt-0007": {"OKTA-WF": 4, "OKTA-SSO": 3},
    "zt-0099": {"OKTA-SSO": 6},
}
