-- FX demo queries for QuestDB (SPEC §4.2, §4.3, §12).
--
-- Runnable as is against the tables and views of a default run into QuestDB, e.g.
--   mkt-pipeline fx --mode faster-than-life --start_ts 2025-11-11T14:00:00Z --end_ts 2025-11-11T15:00:00Z
-- (or `make dev` and a backfill of fx/market_data, fx/core_price, fx/trades with MKT_SINK=questdb).
-- Paste one statement at a time into the QuestDB console or psql (PG wire, port 8812).
--
-- Names. Every table and view name below is the base name. A run with --suffix (MKT_TABLE_SUFFIX)
-- appends the suffix to each of them; rewrite the file once, e.g. for the suffix _demo:
--   sed -E 's/\b(market_data|core_price|fx_trades|core_price_1s|core_price_1d|bbo_1s|bbo_1m|bbo_1h|bbo_1d|market_data_ohlc_1m|market_data_ohlc_15m|market_data_ohlc_1d|fx_trades_ohlc_1m|fx_trades_ohlc_1h|fx_trades_ohlc_1d)\b/\1_demo/g' \
--       queries/fx_demo_queries.sql
-- Nothing else changes: FX tables always name their designated timestamp `timestamp`.
--
-- Views. core_price_1s, bbo_1s, market_data_ohlc_1m/15m and fx_trades_ohlc_1m refresh as rows
-- arrive; the timed rollups (core_price_1d, bbo_1m/1h/1d, market_data_ohlc_1d, fx_trades_ohlc_1h/1d)
-- refresh on their schedule. After a backfill of past days, fill them at once with
--   REFRESH MATERIALIZED VIEW bbo_1m FULL;   -- and so on, in dependency order (bbo_1m before bbo_1h)
--
-- Books: bids/asks are DOUBLE[2][N], row 1 prices (best first), row 2 volumes; SQL arrays are
-- 1-based, so bids[1][1] is the best bid price and bids[2][1] its volume.

-- 1. Rows per table: what the run wrote.
SELECT 'market_data' AS table_name, count() AS row_count FROM market_data
UNION ALL SELECT 'core_price', count() FROM core_price
UNION ALL SELECT 'fx_trades', count() FROM fx_trades;

-- 2. Latest top of book of every pair (LATEST ON: one row per symbol, read from the newest partition).
SELECT timestamp, symbol, best_bid, best_ask, best_ask - best_bid AS spread
FROM market_data
LATEST ON timestamp PARTITION BY symbol
ORDER BY symbol;

-- 3. Latest quote of every pair on every ECN (LATEST ON over two keys).
SELECT timestamp, symbol, ecn, bid_price, ask_price, bid_volume, ask_volume
FROM core_price
LATEST ON timestamp PARTITION BY symbol, ecn
ORDER BY symbol, ecn;

-- 4. 1-minute mid-price candles of EURUSD from the raw books (SAMPLE BY).
SELECT timestamp,
       first((best_bid + best_ask) / 2) AS open,
       max((best_bid + best_ask) / 2) AS high,
       min((best_bid + best_ask) / 2) AS low,
       last((best_bid + best_ask) / 2) AS close,
       count() AS updates
FROM market_data
WHERE symbol = 'EURUSD'
SAMPLE BY 1m;

-- 5. The same candles, precomputed: the market_data_ohlc_1m view (best bid OHLC and L1 volume).
SELECT timestamp, symbol, open, high, low, close, total_volume
FROM market_data_ohlc_1m
WHERE symbol = 'EURUSD'
ORDER BY timestamp;

-- 6. 15-minute candles for the majors, rolled up by the market_data_ohlc_15m view.
SELECT timestamp, symbol, open, high, low, close, total_volume
FROM market_data_ohlc_15m
WHERE symbol IN ('EURUSD', 'USDJPY', 'GBPUSD')
ORDER BY timestamp, symbol;

-- 7. 1-second mid candles and last spread from the core_price_1s view.
SELECT timestamp, open_mid, high_mid, low_mid, close_mid, last_spread
FROM core_price_1s
WHERE symbol = 'GBPUSD'
ORDER BY timestamp
LIMIT 300;

-- 8. Spread statistics in pips per pair (JPY crosses quote 0.01 pips, the others 0.0001).
SELECT symbol,
       count() AS books,
       avg((best_ask - best_bid) / CASE WHEN symbol LIKE '%JPY' THEN 0.01 ELSE 0.0001 END) AS avg_pips,
       min((best_ask - best_bid) / CASE WHEN symbol LIKE '%JPY' THEN 0.01 ELSE 0.0001 END) AS min_pips,
       max((best_ask - best_bid) / CASE WHEN symbol LIKE '%JPY' THEN 0.01 ELSE 0.0001 END) AS max_pips,
       approx_percentile((best_ask - best_bid) / CASE WHEN symbol LIKE '%JPY' THEN 0.01 ELSE 0.0001 END, 0.99) AS p99_pips
FROM market_data
ORDER BY avg_pips;

-- 9. Spread through time: average spread of the majors every 10 seconds.
SELECT timestamp, symbol, avg(best_ask - best_bid) AS avg_spread, max(best_ask - best_bid) AS max_spread
FROM market_data
WHERE symbol IN ('EURUSD', 'USDJPY')
SAMPLE BY 10s;

-- 10. Top of book per second from the bbo_1s view, with the mid.
SELECT timestamp, symbol, bid, ask, (bid + ask) / 2 AS mid
FROM bbo_1s
WHERE symbol = 'USDJPY'
ORDER BY timestamp
LIMIT 300;

-- 11. Minute, hour and day rollups of the BBO (timed views; refresh them after a backfill).
SELECT 'bbo_1m' AS view_name, count() AS rows_in_view, min(bid) AS lowest_bid, max(ask) AS highest_ask FROM bbo_1m
UNION ALL SELECT 'bbo_1h', count(), min(bid), max(ask) FROM bbo_1h
UNION ALL SELECT 'bbo_1d', count(), min(bid), max(ask) FROM bbo_1d;

-- 12. ASOF JOIN: every trade with the book in force when it executed, and its distance from the touch.
SELECT t.timestamp, t.symbol, t.side, t.passive, t.price, t.quantity, m.best_bid, m.best_ask,
       CASE WHEN t.side = 'buy' THEN t.price - m.best_ask ELSE m.best_bid - t.price END AS through_touch
FROM fx_trades t
ASOF JOIN market_data m ON (symbol)
WHERE t.symbol = 'EURUSD'
LIMIT 200;

-- 13. ASOF JOIN to core_price: each ECN's trades against that ECN's last quote.
SELECT t.timestamp, t.symbol, t.ecn, t.price, c.bid_price, c.ask_price, c.reason
FROM fx_trades t
ASOF JOIN core_price c ON (symbol, ecn)
WHERE t.symbol = 'USDJPY'
LIMIT 200;

-- 14. Share of prints at the touch of the book they executed against (ASOF JOIN + aggregation).
SELECT t.symbol,
       count() AS prints,
       sum(CASE WHEN t.price = m.best_bid OR t.price = m.best_ask THEN 1 ELSE 0 END) * 100.0 / count() AS pct_at_touch
FROM fx_trades t
ASOF JOIN market_data m ON (symbol)
ORDER BY prints DESC;

-- 15. VWAP per pair and minute (SAMPLE BY over the trades).
SELECT timestamp, symbol, sum(price * quantity) / sum(quantity) AS vwap, sum(quantity) AS volume, count() AS prints
FROM fx_trades
WHERE symbol IN ('EURUSD', 'GBPUSD')
SAMPLE BY 1m;

-- 16. Trade candles from the fx_trades_ohlc_1m view.
SELECT timestamp, symbol, open, high, low, close, total_volume
FROM fx_trades_ohlc_1m
WHERE symbol = 'EURUSD'
ORDER BY timestamp;

-- 17. Hourly and daily trade rollups (timed views).
SELECT 'fx_trades_ohlc_1h' AS view_name, symbol, count() AS candles, sum(total_volume) AS volume FROM fx_trades_ohlc_1h
UNION ALL SELECT 'fx_trades_ohlc_1d', symbol, count(), sum(total_volume) FROM fx_trades_ohlc_1d
ORDER BY view_name, volume DESC;

-- 18. WINDOW functions: a 20-print moving average of the price and each print's change.
SELECT timestamp, symbol, price,
       avg(price) OVER (PARTITION BY symbol ORDER BY timestamp ROWS BETWEEN 19 PRECEDING AND CURRENT ROW) AS ma20,
       price - lag(price) OVER (PARTITION BY symbol ORDER BY timestamp) AS change
FROM fx_trades
WHERE symbol = 'EURUSD'
LIMIT 500;

-- 19. WINDOW functions: fills of each order numbered, with the order's running quantity.
SELECT timestamp, order_id, symbol, side, price, quantity,
       row_number() OVER (PARTITION BY order_id ORDER BY timestamp) AS fill_no,
       sum(quantity) OVER (PARTITION BY order_id ORDER BY timestamp ROWS UNBOUNDED PRECEDING) AS filled_so_far
FROM fx_trades
WHERE symbol = 'GBPUSD'
LIMIT 500;

-- 20. WINDOW functions over time: traded volume of the last 10 seconds at every print.
SELECT timestamp, symbol, quantity,
       sum(quantity) OVER (PARTITION BY symbol ORDER BY timestamp RANGE BETWEEN 10 seconds PRECEDING AND CURRENT ROW) AS volume_10s
FROM fx_trades
WHERE symbol = 'USDJPY'
LIMIT 500;

-- 21. Array slicing: the best five price levels of each side of the latest EURUSD book.
SELECT timestamp, bids[1][1:6] AS bid_prices, bids[2][1:6] AS bid_volumes, asks[1][1:6] AS ask_prices, asks[2][1:6] AS ask_volumes
FROM market_data
WHERE symbol = 'EURUSD'
LATEST ON timestamp PARTITION BY symbol;

-- 22. Array functions: depth of each side, cumulative volume by level, and the book's levels.
SELECT timestamp, symbol, dim_length(bids, 2) AS levels,
       array_sum(bids[2]) AS bid_depth, array_sum(asks[2]) AS ask_depth,
       array_cum_sum(bids[2]) AS bid_cumulative
FROM market_data
LATEST ON timestamp PARTITION BY symbol
ORDER BY bid_depth DESC;

-- 23. Cost of size: average fill price of 5 million on each side (l2price walks the levels).
SELECT timestamp, symbol, best_bid, best_ask,
       l2price(5000000, bids[2], bids[1]) AS sell_5m_at,
       l2price(5000000, asks[2], asks[1]) AS buy_5m_at
FROM market_data
WHERE symbol IN ('EURUSD', 'USDJPY')
LATEST ON timestamp PARTITION BY symbol;

-- 24. Order-book imbalance: L1 and top-5 bid share of the displayed volume, per minute.
SELECT timestamp, symbol,
       avg(bids[2][1] / (bids[2][1] + asks[2][1])) AS l1_imbalance,
       avg(array_sum(bids[2][1:6]) / (array_sum(bids[2][1:6]) + array_sum(asks[2][1:6]))) AS top5_imbalance
FROM market_data
WHERE symbol = 'EURUSD'
SAMPLE BY 1m;

-- 25. Ingestion rate: rows per second written to market_data (FILL(0) shows gaps as zeros).
SELECT timestamp, count() AS rows_per_second
FROM market_data
SAMPLE BY 1s FILL(0)
LIMIT 600;

-- 26. Quote reasons: news and liquidity events per minute.
SELECT timestamp, reason, count() AS quotes, avg(ask_price - bid_price) AS avg_spread
FROM core_price
SAMPLE BY 1m;

-- 27. Core price against the full book: how much of the book's L1 volume one ECN shows.
SELECT c.timestamp, c.symbol, c.ecn, c.bid_volume, m.bids[2][1] AS book_l1_bid_volume,
       c.bid_volume / m.bids[2][1] AS share_of_book
FROM core_price c
ASOF JOIN market_data m ON (symbol)
WHERE c.symbol = 'EURUSD'
LIMIT 200;

-- 28. Busiest counterparties (LEIs) by notional.
SELECT counterparty, count() AS prints, count_distinct(order_id) AS orders, sum(quantity * price) AS notional
FROM fx_trades
ORDER BY notional DESC
LIMIT 20;

-- 29. Passive versus aggressive flow per pair.
SELECT symbol, passive, count() AS prints, sum(quantity) AS volume, avg(quantity) AS avg_print
FROM fx_trades
ORDER BY symbol, passive;

-- 30. Daily candles from the market_data_ohlc_1d and core_price_1d views (timed).
SELECT o.timestamp, o.symbol, o.open, o.high, o.low, o.close, c.avg_bid, c.avg_ask
FROM market_data_ohlc_1d o
JOIN core_price_1d c ON (symbol, timestamp)
ORDER BY o.symbol;

-- 31. Health of the views and the WAL: refresh state and apply lag of every table.
SELECT view_name, view_status, refresh_type, base_table_name, last_refresh_finish_timestamp
FROM materialized_views()
ORDER BY view_name;

-- 32. WAL apply lag per table (transactions committed but not yet applied).
SELECT name, writerTxn, sequencerTxn, sequencerTxn - writerTxn AS lag, suspended
FROM wal_tables()
WHERE name IN ('market_data', 'core_price', 'fx_trades');
