-- U.S. equities demo queries for QuestDB (SPEC §5.2, §5.3, §12).
--
-- Runnable as is against the tables and views of a default run into QuestDB, e.g.
--   mkt-pipeline equities --mode faster-than-life --start_ts 2025-11-11T14:30:00Z --end_ts 2025-11-11T15:30:00Z
-- (or `make dev` and a backfill of equities/market_data, equities/trades with MKT_SINK=questdb).
-- Paste one statement at a time into the QuestDB console or psql (PG wire, port 8812).
--
-- Names. Every table and view name below is the base name, and the designated timestamp is
-- `timestamp_ns` (the default). Tables written with --prefix / --suffix (MKT_EQUITIES_PREFIX,
-- MKT_TABLE_SUFFIX) prepend/append them to each name; tables written with
-- --timestamp_column timestamp (the public equities script's schema) call the column `timestamp`.
-- Rewrite the file once, e.g. for the published dashboards' tables (prefix eq_, column timestamp):
--   sed -E -e 's/\b(equities_market_data|equities_trades|top_of_book_1s|nbbo_1s|trades_ohlcv_1s|nbbo_1m|nbbo_1h|trades_ohlcv_1m|trades_ohlcv_15m)\b/eq_\1/g' \
--          -e 's/\btimestamp_ns\b/timestamp/g' queries/equities_demo_queries.sql
-- (a suffix goes after \1 the same way: `eq_\1_demo`).
--
-- Views. top_of_book_1s, nbbo_1s and trades_ohlcv_1s refresh as rows arrive; the rollups nbbo_1m,
-- nbbo_1h, trades_ohlcv_1m and trades_ohlcv_15m refresh on their schedule. After a backfill of
-- past days, fill them at once (in dependency order):
--   REFRESH MATERIALIZED VIEW nbbo_1m FULL;  REFRESH MATERIALIZED VIEW nbbo_1h FULL;
--   REFRESH MATERIALIZED VIEW trades_ohlcv_1m FULL;  REFRESH MATERIALIZED VIEW trades_ohlcv_15m FULL;
--
-- Books: bids/asks are DOUBLE[2][N] per (symbol, venue), row 1 prices (best first), row 2 sizes in
-- shares; SQL arrays are 1-based, so bids[1][1] is the venue's best bid and bids[2][1] its size.
-- Trades: side B buyer-initiated, S seller-initiated; cond T regular, O opening cross, C closing
-- cross, H halt resume.

-- 1. Rows per table: what the run wrote.
SELECT 'equities_market_data' AS table_name, count() AS row_count FROM equities_market_data
UNION ALL SELECT 'equities_trades', count() FROM equities_trades;

-- 2. Latest quote of every symbol on every venue (LATEST ON over two keys).
SELECT timestamp_ns, symbol, venue, bids[1][1] AS bid, bids[2][1] AS bid_size, asks[1][1] AS ask, asks[2][1] AS ask_size
FROM equities_market_data
LATEST ON timestamp_ns PARTITION BY symbol, venue
ORDER BY symbol, venue;

-- 3. The NBBO now: best bid and offer across the venues' latest quotes, and who is at the touch.
SELECT symbol, max(bids[1][1]) AS best_bid, min(asks[1][1]) AS best_ask, min(asks[1][1]) - max(bids[1][1]) AS spread,
       count() AS venues_quoting
FROM (
  SELECT timestamp_ns, symbol, venue, bids, asks
  FROM equities_market_data
  LATEST ON timestamp_ns PARTITION BY symbol, venue
)
ORDER BY symbol;

-- 4. Latest trade of every symbol (LATEST ON).
SELECT timestamp_ns, symbol, venue, price, size, side, cond
FROM equities_trades
LATEST ON timestamp_ns PARTITION BY symbol
ORDER BY symbol;

-- 5. 1-second top of book per venue, from the top_of_book_1s view.
SELECT timestamp_ns, venue, bid_price, bid_size, ask_price, ask_size
FROM top_of_book_1s
WHERE symbol = 'AAPL'
ORDER BY timestamp_ns, venue
LIMIT 500;

-- 6. 1-second NBBO and spread from the nbbo_1s view.
SELECT timestamp_ns, best_bid, best_ask, spread, (best_bid + best_ask) / 2 AS mid
FROM nbbo_1s
WHERE symbol = 'MSFT'
ORDER BY timestamp_ns
LIMIT 300;

-- 7. Minute and hour NBBO rollups (timed views; refresh them after a backfill).
SELECT 'nbbo_1m' AS view_name, symbol, count() AS rows_in_view, max(max_bid) AS highest_bid, min(min_spread) AS tightest
FROM nbbo_1m
UNION ALL
SELECT 'nbbo_1h', symbol, count(), max(max_bid), min(min_spread) FROM nbbo_1h
ORDER BY view_name, symbol;

-- 8. Spread statistics in ticks (0.01 USD) per symbol, from the 1-second NBBO.
SELECT symbol,
       count() AS seconds,
       avg(spread / 0.01) AS avg_ticks,
       approx_percentile(spread / 0.01, 0.5) AS median_ticks,
       max(spread / 0.01) AS max_ticks,
       sum(CASE WHEN round(spread / 0.01) <= 1 THEN 1 ELSE 0 END) * 100.0 / count() AS pct_one_tick
FROM nbbo_1s
ORDER BY avg_ticks;

-- 9. Quoted spread per venue: which venue quotes tightest (venue quotes sit at or behind the NBBO).
SELECT symbol, venue, avg(asks[1][1] - bids[1][1]) AS avg_spread, avg(bids[2][1] + asks[2][1]) AS avg_l1_shares
FROM equities_market_data
WHERE symbol IN ('AAPL', 'NVDA')
ORDER BY symbol, avg_spread;

-- 10. Spread through time: the NBBO spread of the mega-caps every 10 seconds.
SELECT timestamp_ns, symbol, avg(spread) AS avg_spread, max(spread) AS max_spread
FROM nbbo_1s
WHERE symbol IN ('AAPL', 'MSFT', 'NVDA')
SAMPLE BY 10s;

-- 11. 1-second trade bars with VWAP, from the trades_ohlcv_1s view.
SELECT timestamp_ns, open, high, low, close, volume, vwap
FROM trades_ohlcv_1s
WHERE symbol = 'NVDA'
ORDER BY timestamp_ns
LIMIT 300;

-- 12. Minute and 15-minute bars with VWAP (timed rollups).
SELECT timestamp_ns, symbol, open, high, low, close, volume, vwap FROM trades_ohlcv_1m
WHERE symbol = 'AAPL'
UNION ALL
SELECT timestamp_ns, symbol, open, high, low, close, volume, vwap FROM trades_ohlcv_15m
WHERE symbol = 'AAPL'
ORDER BY timestamp_ns;

-- 13. VWAP and volume per symbol and minute from the raw trades (SAMPLE BY).
SELECT timestamp_ns, symbol, sum(price * size) / sum(size) AS vwap, sum(size) AS volume, count() AS prints
FROM equities_trades
WHERE symbol IN ('AAPL', 'TSLA')
SAMPLE BY 1m;

-- 14. Candles of any width on the fly: 10-second bars from the trades.
SELECT timestamp_ns, first(price) AS open, max(price) AS high, min(price) AS low, last(price) AS close, sum(size) AS volume
FROM equities_trades
WHERE symbol = 'TSLA'
SAMPLE BY 10s;

-- 15. ASOF JOIN: every trade with the quote of its venue in force when it printed.
SELECT t.timestamp_ns, t.symbol, t.venue, t.side, t.price, t.size, q.bids[1][1] AS venue_bid, q.asks[1][1] AS venue_ask
FROM equities_trades t
ASOF JOIN equities_market_data q ON (symbol, venue)
WHERE t.symbol = 'AAPL'
LIMIT 200;

-- 16. ASOF JOIN to the NBBO: where trades print against the national best bid and offer.
SELECT t.symbol,
       count() AS prints,
       sum(CASE WHEN t.price > n.best_bid AND t.price < n.best_ask THEN 1 ELSE 0 END) * 100.0 / count() AS pct_inside,
       sum(CASE WHEN t.price = n.best_bid OR t.price = n.best_ask THEN 1 ELSE 0 END) * 100.0 / count() AS pct_at_touch
FROM equities_trades t
ASOF JOIN nbbo_1s n ON (symbol)
WHERE t.cond = 'T'
ORDER BY prints DESC;

-- 17. Effective spread: each trade's distance from the venue mid, in ticks, per symbol.
SELECT t.symbol, avg(abs(t.price - (q.bids[1][1] + q.asks[1][1]) / 2) * 2 / 0.01) AS avg_effective_spread_ticks, count() AS prints
FROM equities_trades t
ASOF JOIN equities_market_data q ON (symbol, venue)
ORDER BY avg_effective_spread_ticks;

-- 18. Volume and trade count by venue (market share).
SELECT v.venue, v.prints, v.shares, v.shares * 100.0 / total.shares AS pct_of_volume
FROM (SELECT venue, count() AS prints, sum(size) AS shares FROM equities_trades) v
CROSS JOIN (SELECT sum(size) AS shares FROM equities_trades) total
ORDER BY v.shares DESC;

-- 19. Trade size mix: odd lots, round lots and blocks.
SELECT CASE WHEN size < 100 THEN 'odd lot (1-99)' WHEN size < 1000 THEN 'round lot (100-999)' ELSE 'block (1000+)' END AS bucket,
       count() AS prints, avg(size) AS avg_size, sum(size) AS shares
FROM equities_trades
WHERE cond = 'T'
ORDER BY bucket;

-- 20. Buy versus sell pressure per minute (signed volume).
SELECT timestamp_ns, symbol,
       sum(CASE WHEN side = 'B' THEN size ELSE 0 END) AS buy_volume,
       sum(CASE WHEN side = 'S' THEN size ELSE 0 END) AS sell_volume,
       sum(CASE WHEN side = 'B' THEN size ELSE -size END) AS net_volume
FROM equities_trades
WHERE symbol IN ('AAPL', 'MSFT')
SAMPLE BY 1m;

-- 21. WINDOW functions: a 50-print moving VWAP and each print's change.
SELECT timestamp_ns, symbol, price, size,
       sum(price * size) OVER (PARTITION BY symbol ORDER BY timestamp_ns ROWS BETWEEN 49 PRECEDING AND CURRENT ROW)
         / sum(size) OVER (PARTITION BY symbol ORDER BY timestamp_ns ROWS BETWEEN 49 PRECEDING AND CURRENT ROW) AS vwap_50,
       price - lag(price) OVER (PARTITION BY symbol ORDER BY timestamp_ns) AS change
FROM equities_trades
WHERE symbol = 'AAPL'
LIMIT 500;

-- 22. WINDOW functions over time: shares traded in the last 5 seconds at every print, and the running total.
SELECT timestamp_ns, symbol, size,
       sum(size) OVER (PARTITION BY symbol ORDER BY timestamp_ns RANGE BETWEEN 5 seconds PRECEDING AND CURRENT ROW) AS shares_5s,
       sum(size) OVER (PARTITION BY symbol ORDER BY timestamp_ns ROWS UNBOUNDED PRECEDING) AS shares_so_far
FROM equities_trades
WHERE symbol = 'NVDA'
LIMIT 500;

-- 23. WINDOW functions: rank the venues by volume within each symbol.
SELECT symbol, venue, shares, rank() OVER (PARTITION BY symbol ORDER BY shares DESC) AS venue_rank
FROM (SELECT symbol, venue, sum(size) AS shares FROM equities_trades)
ORDER BY symbol, venue_rank;

-- 24. Array slicing: the best five levels of each side of the latest AAPL book on every venue.
SELECT timestamp_ns, venue, bids[1][1:6] AS bid_prices, bids[2][1:6] AS bid_sizes, asks[1][1:6] AS ask_prices, asks[2][1:6] AS ask_sizes
FROM equities_market_data
WHERE symbol = 'AAPL'
LATEST ON timestamp_ns PARTITION BY symbol, venue;

-- 25. Array functions: displayed depth per side, cumulative shares by level, levels per book.
SELECT timestamp_ns, symbol, venue, dim_length(bids, 2) AS levels,
       array_sum(bids[2]) AS bid_shares, array_sum(asks[2]) AS ask_shares, array_cum_sum(asks[2]) AS ask_cumulative
FROM equities_market_data
LATEST ON timestamp_ns PARTITION BY symbol, venue
ORDER BY bid_shares DESC
LIMIT 30;

-- 26. Cost of size: average price to buy or sell 2,000 shares on each venue (l2price walks the levels).
SELECT timestamp_ns, venue, bids[1][1] AS bid, asks[1][1] AS ask,
       l2price(2000, bids[2], bids[1]) AS sell_2000_at,
       l2price(2000, asks[2], asks[1]) AS buy_2000_at
FROM equities_market_data
WHERE symbol = 'MSFT'
LATEST ON timestamp_ns PARTITION BY symbol, venue;

-- 27. Book imbalance per second: bid share of the top-5 displayed shares, across venues.
SELECT timestamp_ns, symbol,
       avg(array_sum(bids[2][1:6]) / (array_sum(bids[2][1:6]) + array_sum(asks[2][1:6]))) AS top5_imbalance
FROM equities_market_data
WHERE symbol = 'AAPL'
SAMPLE BY 1s
LIMIT 300;

-- 28. Ingestion rate: quotes and trades written per second (FILL(0) shows gaps as zeros).
SELECT q.timestamp_ns, q.quotes, t.trades
FROM (SELECT timestamp_ns, count() AS quotes FROM equities_market_data SAMPLE BY 1s FILL(0)) q
JOIN (SELECT timestamp_ns, count() AS trades FROM equities_trades SAMPLE BY 1s FILL(0)) t ON (timestamp_ns)
ORDER BY q.timestamp_ns
LIMIT 600;

-- 29. Quote updates per venue per minute.
SELECT timestamp_ns, venue, count() AS updates
FROM equities_market_data
SAMPLE BY 1m;

-- 30. Opening and closing crosses, halt resumes: the special prints of the session.
SELECT cond, count() AS prints, sum(size) AS shares, count_distinct(symbol) AS symbols
FROM equities_trades
ORDER BY cond;

-- 31. Realised volatility: standard deviation of 1-second VWAP returns per symbol.
SELECT symbol, stddev_samp(ret) * 10000 AS vol_bps_per_second, count() AS seconds
FROM (
  SELECT symbol, vwap / lag(vwap) OVER (PARTITION BY symbol ORDER BY timestamp_ns) - 1 AS ret
  FROM trades_ohlcv_1s
)
WHERE ret IS NOT NULL
ORDER BY vol_bps_per_second DESC;

-- 32. Health of the views and the WAL: refresh state of every view.
SELECT view_name, view_status, refresh_type, base_table_name, last_refresh_finish_timestamp
FROM materialized_views()
ORDER BY view_name;

-- 33. WAL apply lag per table (transactions committed but not yet applied).
SELECT name, writerTxn, sequencerTxn, sequencerTxn - writerTxn AS lag, suspended
FROM wal_tables()
WHERE name IN ('equities_market_data', 'equities_trades');
