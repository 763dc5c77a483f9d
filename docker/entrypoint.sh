#!/usr/bin/env bash
# Container entrypoint: map the seed scripts' environment variables (HOST, TOKEN, MARKET_DATA_MIN_EPS, ...)
# onto `mkt-pipeline <market>` flags, then append the container's arguments (which win: argparse keeps the
# last value of a repeated flag).
#   docker run -e HOST=db -e MARKET_DATA_MAX_EPS=2500 image                 -> mkt-pipeline fx --mode real-time --host db ...
#   docker run -e MARKET=equities image --offsession_trades trickle         -> mkt-pipeline equities ... --offsession_trades trickle
#   docker run image dagster-webserver -h 0.0.0.0                           -> runs that command instead
set -euo pipefail

# Flag names, kept equal to mkt_pipeline.cli.market_flags() by mkt_pipeline_tests/test_docker_entrypoint.py.
COMMON_FLAGS="seed market_data_min_eps market_data_max_eps min_levels max_levels
  mode start_ts end_ts total_market_data_events chunk_seconds processes incremental overwrite yahoo_refresh_secs
  sink parquet_dir suffix host pg_port http_port ilp_port protocol user token_file ilp_user tls_verify tls_ca
  create_views short_ttl enterprise"
FX_FLAGS="core_min_eps core_max_eps orders_min_per_sec orders_max_per_sec lei_pool_size"
EQUITIES_FLAGS="trades_min_eps trades_max_eps session_pacing offsession_trades prefix timestamp_column"
# Secrets travel as QUESTDB_* variables, never as arguments (visible in the process list and logs).
SECRET_FLAGS="password token token_x token_y"

case "${1:-}" in
  fx | equities) MARKET="$1"; shift ;;
  "" | -*) ;;
  *) exec "$@" ;;
esac
MARKET="${MARKET:-fx}"
case "$MARKET" in
  fx) FLAGS="$COMMON_FLAGS $FX_FLAGS" ;;
  equities) FLAGS="$COMMON_FLAGS $EQUITIES_FLAGS" ;;
  *) echo "entrypoint: MARKET must be fx or equities (got '$MARKET')" >&2; exit 2 ;;
esac

for name in $SECRET_FLAGS; do
  var="${name^^}"
  target="QUESTDB_${var}"
  if [[ -n "${!var:-}" && -z "${!target:-}" ]]; then
    export "${target}=${!var}"
  fi
  unset "$var"
done

# The seed's container streamed live data; a MODE variable or a --mode argument chooses otherwise.
args=(--mode "${MODE:-real-time}")
for name in $FLAGS; do
  [[ "$name" == mode ]] && continue
  var="${name^^}"
  if [[ -n "${!var:-}" ]]; then
    args+=("--${name}" "${!var}")
  fi
done

exec mkt-pipeline "$MARKET" "${args[@]}" "$@"
