"""Access control: tokens and roles (``tokens``), the rule table and interceptor
(``authorizing``), and AclService (``servicer``)."""

from manager.acl.tokens import (
    ACL_FILE,
    ANYONE,
    GRANTS,
    MANAGEMENT,
    Permission,
    Principal,
    Role,
    TokenRecord,
    Tokens,
    caller,
    role_of,
    set_caller,
)

__all__ = [
    "ACL_FILE",
    "ANYONE",
    "GRANTS",
    "MANAGEMENT",
    "Permission",
    "Principal",
    "Role",
    "TokenRecord",
    "Tokens",
    "caller",
    "role_of",
    "set_caller",
]
