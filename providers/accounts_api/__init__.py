"""REST API for user accounts, their roles and API tokens: one module per use case (users,
memberships, passwords, tokens) over the shared reads in `base`.

Accounts are read by network quality managers, auditors and system administrators (superusers),
and written by quality managers and system administrators only (`providers.accounts`); clinic
staff are refused (403 `role_required`). Tokens: anyone may sign in for one with username and
password (throttled, and locked out after repeated wrong passwords); every signed-in user lists and
revokes their own; account keepers list and revoke anyone's.
"""
