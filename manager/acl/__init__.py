"""Access control: tokens and roles (``tokens``, kept in the manager's store), the rule
table and interceptor (``authorizing``), and AclService (``servicer``)."""

from manager.acl.tokens import (
    ACL_FILE,
    ANYONE,
    GRANTS,
    IMPORTED_SUFFIX,
    MANAGEMENT,
    Permission,
    Principal,
    Role,
    StoredTokens,
    TokenRecord,
    Tokens,
    TokenStore,
    caller,
    import_file,
    role_of,
    set_caller,
)

__all__ = [
    "ACL_FILE",
    "ANYONE",
    "GRANTS",
    "IMPORTED_SUFFIX",
    "MANAGEMENT",
    "Permission",
    "Principal",
    "Role",
    "StoredTokens",
    "TokenRecord",
    "TokenStore",
    "Tokens",
    "caller",
    "import_file",
    "role_of",
    "set_caller",
]
