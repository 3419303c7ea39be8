-- Queries run on Henge and on PostgreSQL over the same rows (postgres_compare.sh); one per
-- line. Every answer is ordered, so the text must match exactly.
SELECT count(*), sum(n), count(country), count(page), min(ts), max(ts) FROM t
SELECT count(*), sum(n) FROM t WHERE country = 'DE'
SELECT count(*), sum(n) FROM t WHERE country <> 'DE'
SELECT count(*) FROM t WHERE country IN ('FR', 'US', 'Ürün')
SELECT count(*) FROM t WHERE country NOT IN ('FR', 'US')
SELECT count(*) FROM t WHERE country IS NULL
SELECT count(*) FROM t WHERE page IS NOT NULL AND country IS NOT NULL
SELECT count(*) FROM t WHERE country LIKE 'D%'
SELECT count(*) FROM t WHERE country ILIKE 'd%'
SELECT count(*) FROM t WHERE country NOT LIKE '%R%'
SELECT count(*) FROM t WHERE page ~ '^/p/1[0-9]$'
SELECT count(*) FROM t WHERE country >= 'E' AND country < 'V'
SELECT count(*) FROM t WHERE country = 'a''b'
SELECT count(*) FROM t WHERE upper(country) = 'DE'
SELECT count(*) FROM t WHERE country = 'DE' OR page = '/p/5'
SELECT count(*) FROM t WHERE NOT (country = 'DE' OR page = '/p/5')
SELECT count(*) FROM t WHERE NOT (country <> 'FR') AND n > 100
SELECT count(*) FROM t WHERE (country = 'US' AND n < 0) OR (country = 'FR' AND x > 30)
SELECT count(*) FROM t WHERE country = 'XX'
SELECT count(*), sum(n) FROM t WHERE ts >= '2024-06-01 02:00' AND ts < '2024-06-01 03:30'
SELECT count(*) FROM t WHERE ts BETWEEN '2024-06-01 05:00:00' AND '2024-06-01 06:00:00'
SELECT count(*) FROM t WHERE ts < '2024-05-31 00:00'
SELECT count(*) FROM t WHERE ts > '2024-06-01 07:00'
SELECT count(*) FROM t WHERE n > 600
SELECT count(*) FROM t WHERE n BETWEEN -100 AND 100 AND country IS NOT NULL
SELECT count(*) FROM t WHERE x < 5 OR x IS NULL
SELECT min(x), max(x) FROM t WHERE country = 'US'
SELECT country, count(*), sum(n), min(page), max(x) FROM t GROUP BY country ORDER BY country
SELECT country, count(*) FROM t WHERE page LIKE '/p/2%' GROUP BY country ORDER BY country
SELECT page, count(*) FROM t WHERE country = 'FR' GROUP BY page ORDER BY count(*) DESC, page LIMIT 5
SELECT date_trunc('hour', ts) AS h, count(*), sum(n) FROM t GROUP BY h ORDER BY h
SELECT date_trunc('hour', ts) AS h, count(*) FROM t WHERE country = 'DE' AND ts >= '2024-06-01 03:00' GROUP BY h ORDER BY h
SELECT count(DISTINCT page) FROM t WHERE country IN ('DE', 'de')
SELECT a.country, count(*) FROM t a JOIN t b ON a.page = b.page AND a.ts = b.ts WHERE a.n > 500 GROUP BY a.country ORDER BY a.country
SELECT count(*) FROM t WHERE page IN (SELECT page FROM t WHERE country = 'Ürün' AND n > 650)
SELECT count(*) FROM t WHERE n > (SELECT avg(n) FROM t WHERE country = 'FR')
SELECT ts, country, n FROM t WHERE country = 'US' ORDER BY ts LIMIT 3
SELECT ts, page FROM t WHERE ts >= '2024-06-01 06:00' ORDER BY ts DESC LIMIT 4
SELECT count(*) FROM (SELECT n FROM t WHERE country = 'DE' LIMIT 100) AS s
SELECT date_bin(INTERVAL '15 minutes', ts, TIMESTAMP '2024-06-01 00:00:00') AS b, count(*), sum(n) FROM t GROUP BY b ORDER BY b
SELECT floor(extract(epoch from ts) / 600) * 600 AS time, count(*) FROM t WHERE ts >= '2024-06-01 01:00' AND ts < '2024-06-01 04:00' GROUP BY 1 ORDER BY 1
SELECT country, page, count(*), sum(n) FROM t WHERE country IN ('DE', 'FR') GROUP BY country, page ORDER BY country, page
SELECT country, count(DISTINCT page), count(*) FILTER (WHERE n > 0), max(page), min(ts) FROM t GROUP BY country ORDER BY country
SELECT count(*) FROM t WHERE country = 'DE' AND ts >= '2024-06-01 02:00' AND ts < '2024-06-01 05:00'
SELECT date_trunc('minute', ts) AS m, country, count(*) FROM t WHERE ts >= '2024-06-01 03:00' AND ts < '2024-06-01 03:10' GROUP BY m, country ORDER BY m, country
SELECT count(DISTINCT country), count(DISTINCT page) FROM t WHERE n < 0
SELECT n % 7 AS r, count(*), min(country) FROM t GROUP BY r ORDER BY r
