"""The ``QUESTDB_*`` variables, by the CLI flag they default: a light module (no client, no pandas), so
the command line can name them without importing the QuestDB sink."""

QUESTDB_ENV: dict[str, str] = {
    "host": "QUESTDB_HOST",
    "http_port": "QUESTDB_HTTP_PORT",
    "ilp_port": "QUESTDB_ILP_TCP_PORT",
    "pg_port": "QUESTDB_PG_PORT",
    "protocol": "QUESTDB_PROTOCOL",
    "user": "QUESTDB_USER",
    "password": "QUESTDB_PASSWORD",
    "token": "QUESTDB_TOKEN",
    "token_x": "QUESTDB_TOKEN_X",
    "token_y": "QUESTDB_TOKEN_Y",
    "ilp_user": "QUESTDB_ILP_USER",
    "tls_verify": "QUESTDB_TLS_VERIFY",
    "tls_ca": "QUESTDB_TLS_CA",
    # the stall timeout: a setting of every transport to QuestDB
    "stall_timeout_secs": "MKT_STALL_TIMEOUT_SECONDS",
}
