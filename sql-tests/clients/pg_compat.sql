-- PostgreSQL compatibility suite (postgres_compare.sh): everyday expressions and statements,
-- grouped by the chapter of PostgreSQL 15's documentation they come from, one per line,
-- run in order on Henge and on PostgreSQL over the same table t. Each must give the same
-- rows (psql's unaligned text) or fail with the same SQLSTATE; Henge may refuse one with
-- 0A000 or 42883 (counted as not yet supported), never answer it differently.
-- 9.1 Logical Operators
SELECT true AND false, true OR false, NOT true
SELECT true AND NULL, false AND NULL, true OR NULL, false OR NULL, NOT NULL::boolean
SELECT (1 < 2) AND (2 < 3)
-- 9.2 Comparison Functions and Operators
SELECT 1 < 2, 2 <= 2, 3 > 4, 4 >= 4, 5 = 5, 5 <> 6, 5 != 6
SELECT 2 BETWEEN 1 AND 3, 2 NOT BETWEEN 1 AND 3
SELECT 2 BETWEEN 3 AND 1, 2 BETWEEN SYMMETRIC 3 AND 1
SELECT 1 IS DISTINCT FROM NULL, NULL IS DISTINCT FROM NULL, 1 IS NOT DISTINCT FROM 1
SELECT NULL IS NULL, 1 IS NOT NULL, NULL::int ISNULL, 1 NOTNULL
SELECT true IS TRUE, NULL::boolean IS UNKNOWN, false IS NOT TRUE, NULL::boolean IS NOT FALSE
SELECT num_nulls(1, NULL, 2, NULL), num_nonnulls(1, NULL, 2)
SELECT 'a' < 'b', 'abc' < 'abd', 'B' < 'a'
SELECT 1 = 1.0, 1 < 1.5, 2.5 > 2
SELECT NULL = NULL, NULL <> 1, 1 < NULL
-- 9.3 Mathematical Functions and Operators
SELECT 2 + 3, 2 - 3, 2 * 3, 5 / 2, 5 % 4, 2 ^ 3
SELECT -5 / 2, -5 % 3, 5 % -3
SELECT 5.0 / 2, 7.5 / 2.5, 1 / 3.0
SELECT 2.0 ^ 10, 2 ^ 0.5, 4 ^ -1
SELECT |/ 25.0, ||/ 27.0, @ -5.0
SELECT 91 & 15, 32 | 3, 17 # 5, ~1, 1 << 4, 8 >> 2
SELECT abs(-17.4), abs(-3), abs(2.5::float8)
SELECT cbrt(64.0), cbrt(27::float8)
SELECT ceil(42.2), ceil(-42.8), ceiling(95.3), floor(42.8), floor(-42.8)
SELECT degrees(0.5), radians(45.0)
SELECT div(9, 4), div(-9, 4), div(9.5, 2)
SELECT exp(1.0), exp(0)
SELECT factorial(5), factorial(0)
SELECT gcd(1071, 462), lcm(1071, 462)
SELECT ln(2.0), log(100.0), log10(1000.0), log(2.0, 64.0)
SELECT mod(9, 4), mod(-9, 4), mod(9.5, 2)
SELECT pi()
SELECT power(9.0, 3.0), power(2, 10), pow(2.0, 3)
SELECT round(42.4), round(42.5), round(-42.5), round(2.5::float8), round(3.5::float8)
SELECT round(42.4382, 2), round(1234.5678, -2), round(-0.5)
SELECT scale(8.4100), min_scale(8.4100), trim_scale(8.4100)
SELECT sign(-8.4), sign(0), sign(3), sign(-2.5::float8)
SELECT sqrt(2.0), sqrt(16)
SELECT trunc(42.8), trunc(-42.8), trunc(42.4382, 2), trunc(1234.5678, -2)
SELECT width_bucket(5.35, 0.024, 10.06, 5), width_bucket(0, 1, 10, 4), width_bucket(11, 1, 10, 4)
SELECT sin(0), cos(0), tan(0), asin(1), acos(1), atan(1), atan2(1, 1)
SELECT sind(30), cosd(60), tand(45), asind(0.5), acosd(0.5), atand(1), atan2d(1, 1)
SELECT sinh(0), cosh(0), tanh(0), asinh(0), acosh(1), atanh(0)
SELECT random() >= 0 AND random() < 1
SELECT 9223372036854775807 + 1
SELECT -9223372036854775808 - 1
SELECT 9223372036854775807 * 2
SELECT 2147483647 + 1
SELECT 2147483647::int4 + 1::int4
SELECT 32767::int2 + 1::int2
SELECT (-2147483648)::int4 * -1::int4
SELECT 1 / 0
SELECT 1.0 / 0
SELECT 1.5::float8 / 0
SELECT 5 % 0
SELECT mod(5, 0)
SELECT 1e308::float8 * 10
SELECT abs(-2147483648::int4)
SELECT sqrt(-1)
SELECT ln(0)
SELECT log(-1.0)
SELECT 10::numeric / 4, 10 / 4::numeric
SELECT 0.1 + 0.2, 0.1::float8 + 0.2::float8
SELECT 1.5::numeric, 1.50::numeric, 100::numeric
SELECT 123.456::numeric(5,1), 0.5::numeric(3,0)
SELECT 12345.6::numeric(4,1)
SELECT 1::numeric / 3
SELECT 2.5 * 4, 1.23 * 1.1
SELECT 1e3, 1.5e-3, 2E+2
SELECT 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float8
SELECT 'NaN'::numeric, 'NaN'::float8 = 'NaN'::float8
-- 8.1 Numeric Types and casts
SELECT CAST(3.7 AS INTEGER), CAST(-3.7 AS INTEGER), CAST(3.5 AS INTEGER), CAST(2.5 AS INTEGER)
SELECT 3.7::float8::int, 2.5::float8::int, 3.5::float8::int, (-2.5)::float8::int
SELECT 2.5::float4::int2, 1.5::bigint
SELECT CAST(3000000000 AS INTEGER)
SELECT CAST(70000 AS SMALLINT)
SELECT 3000000000.5::int4
SELECT 1e20::float8::bigint
SELECT '42'::int, ' 42 '::int, '-7'::bigint
SELECT 'abc'::int
SELECT '4.5'::int
SELECT '99999999999'::int
SELECT '3.14'::numeric, '3.14'::float8, '1e2'::float8
SELECT 'abc'::float8
SELECT 42::text, 4.20::text, 1.5::float8::text
SELECT true::int, 0::boolean, 5::boolean
SELECT 'yes'::boolean, 'off'::boolean, 't'::boolean, 'FALSE'::boolean
SELECT 'maybe'::boolean
SELECT 1::int2 + 1::int2, 1::int4 * 2::int8
SELECT 255::smallint::text, 65::int::char
SELECT 7 / 2 * 2, 7.0 / 2 * 2
SELECT pg_typeof(1), pg_typeof(2147483648), pg_typeof(1.5), pg_typeof(1e3)
SELECT pg_typeof(1::int2 + 1::int2), pg_typeof(1 + 1::int8), pg_typeof(1 + 1.5)
SELECT pg_typeof(1 / 2), pg_typeof(1.0 / 2), pg_typeof(2 ^ 2), pg_typeof(sqrt(4))
SELECT pg_typeof('a'), pg_typeof('a'::text), pg_typeof('a'::varchar), pg_typeof(true)
SELECT pg_typeof(count(*)), pg_typeof(sum(1)), pg_typeof(sum(1.5)), pg_typeof(avg(1))
SELECT pg_typeof(sum(1::int8)), pg_typeof(avg(1.5::float8)), pg_typeof(max(1::int2))
SELECT pg_typeof(round(1.5)), pg_typeof(round(1.5::float8)), pg_typeof(abs(-1))
SELECT pg_typeof(floor(1.5)), pg_typeof(ceil(1.5::float8)), pg_typeof(trunc(1.5))
SELECT pg_typeof(mod(5, 2)), pg_typeof(div(5, 2)), pg_typeof(5 % 2)
SELECT pg_typeof(length('abc')), pg_typeof(position('b' in 'abc'))
SELECT pg_typeof(CAST(1 AS real)), pg_typeof(1::float4 + 1), pg_typeof(1::float4 * 1::float8)
-- 9.4 String Functions and Operators
SELECT 'Post' || 'greSQL', 'Value: ' || 42, 42 || ' is the answer'
SELECT 'abc' || NULL, concat('abc', NULL, 'def'), concat_ws(',', 'a', NULL, 'b')
SELECT concat(1, 2.5, true), concat_ws('-', 2024, 1, 5)
SELECT bit_length('jose'), char_length('josé'), character_length('abc'), octet_length('josé'), length('josé')
SELECT lower('TOM'), upper('tom'), initcap('hi THOMAS'), initcap('hello-world foo_bar')
SELECT overlay('Txxxxas' placing 'hom' from 2 for 4), overlay('abcdef' placing 'XY' from 3)
SELECT position('om' in 'Thomas'), position('x' in 'Thomas'), strpos('high', 'ig')
SELECT substring('Thomas' from 2 for 3), substring('Thomas' from 3), substring('Thomas' for 2)
SELECT substr('alphabet', 3, 2), substr('alphabet', 3), substr('alphabet', 0, 3), substr('alphabet', -1, 3)
SELECT substring('Thomas' from '...$'), substring('foobar' from 'o(.)b')
SELECT substring('Thomas' similar '%#"o_a#"_' escape '#')
SELECT trim(both 'xyz' from 'yxTomxx'), trim(leading 'x' from 'xxTomxx'), trim(trailing 'x' from 'xxTomxx')
SELECT trim('  abc  '), ltrim('  abc'), rtrim('abc  '), btrim('xyxtrimyyx', 'xyz'), ltrim('zzzytest', 'xyz'), rtrim('testxxzx', 'xyz')
SELECT ascii('x'), ascii(''), chr(65), chr(228)
SELECT chr(0)
SELECT left('abcde', 2), left('abcde', -2), right('abcde', 2), right('abcde', -2)
SELECT lpad('hi', 5, 'xy'), rpad('hi', 5, 'xy'), lpad('hello', 3), rpad('hi', 4)
SELECT repeat('Pg', 4), repeat('x', 0), reverse('abc')
SELECT replace('abcdefabcdef', 'cd', 'XX'), replace('abc', '', 'x')
SELECT split_part('abc~@~def~@~ghi', '~@~', 2), split_part('abc,def,ghi', ',', -1), split_part('a,b', ',', 5)
SELECT starts_with('alphabet', 'alph'), 'alphabet' ^@ 'alph'
SELECT translate('12345', '143', 'ax'), translate('hello', 'l', 'L')
SELECT md5('abc'), md5('')
SELECT to_hex(2147483647), to_hex(255), to_hex(-1)
SELECT quote_ident('Foo bar'), quote_ident('foo'), quote_ident('select')
SELECT quote_literal('O''Reilly'), quote_literal(42.5), quote_nullable(NULL), quote_nullable('x')
SELECT format('Hello %s, %s', 'World', 42), format('%I', 'Foo Bar'), format('%L', 'O''Reilly')
SELECT format('|%10s|%-10s|', 'right', 'left'), format('%2$s %1$s', 'a', 'b'), format('%%')
SELECT format('%s', NULL), format('%L', NULL), format('x%sy', '')
SELECT string_to_array('xx~~yy~~zz', '~~'), string_to_array('a,b,,c', ',', '')
SELECT array_to_string(ARRAY[1, 2, 3, NULL, 5], ',', '*'), array_to_string(ARRAY['a', 'b'], '-')
SELECT regexp_replace('Thomas', '.[mN]a.', 'M'), regexp_replace('foobarbaz', 'b..', 'X', 'g')
SELECT regexp_replace('ABC abc', 'b', 'X', 'gi'), regexp_replace('abc', '(b)', '[\1]')
SELECT regexp_match('foobarbequebaz', 'bar.*que'), regexp_match('foobarbequebaz', '(bar)(beque)')
SELECT regexp_match('abc', 'x')
SELECT regexp_matches('foobarbequebaz', 'ba.', 'g')
SELECT regexp_split_to_array('hello world  foo', '\s+')
SELECT regexp_split_to_table('hello world', '\s+')
SELECT regexp_count('ABCABCAXYaxy', 'A.'), regexp_count('ABCABCAXYaxy', 'A.', 1, 'i')
SELECT regexp_like('Hello World', 'world'), regexp_like('Hello World', 'world', 'i')
SELECT regexp_instr('ABCDEF', 'c(.)(..)', 1, 1, 0, 'i'), regexp_substr('ABCDEF', 'c(.)(..)', 1, 1, 'i')
SELECT 'abc' ~ 'b', 'abc' ~* 'B', 'abc' !~ 'b', 'abc' !~* 'B'
SELECT 'aaa' ~ '^a{2,3}$', 'abc' ~ '(?i)ABC'
SELECT encode('123\000\001'::bytea, 'hex'), encode('hello'::bytea, 'base64'), decode('aGVsbG8=', 'base64')
SELECT convert_to('abc', 'UTF8'), length('abc'::bytea)
SELECT E'a\\000b'::bytea::text, 'abc'::bytea::varchar, CAST(decode('00ff', 'hex') AS text)
SELECT s::bytea, length(s::bytea) FROM (VALUES (1, '\x41'), (2, 'a\\b'), (3, 'plain')) AS v(n, s) ORDER BY n
SELECT s::bytea FROM (VALUES ('a\b')) AS v(s)
SELECT string_agg(x, ',' ORDER BY x) FROM (VALUES ('a'), ('b'), ('c')) AS v(x)
SELECT 'abc'::varchar(2), 'abc'::char(5) || '|', length('ab '::char(5))
SELECT 'abcdef'::varchar(3)
SELECT unistr('d\0061t\+000061'), E'tab\there', E'a\\b'
SELECT 'A' = 'a', lower('ABC'), upper('abc')
SELECT length(NULL), upper(NULL), 'x' || NULL || 'y'
SELECT 'abc' LIKE 'a%', 'abc' LIKE '_b_', 'abc' LIKE 'c', 'a%c' LIKE 'a\%c', 'abc' NOT LIKE 'a%'
SELECT 'ABC' ILIKE 'a%', 'abc' ~~ 'a%', 'abc' ~~* 'A%', 'abc' !~~ 'a%'
SELECT 'a_c' LIKE 'a#_c' ESCAPE '#', 'abc' LIKE 'a#_c' ESCAPE '#'
-- 9.7 Pattern Matching: SIMILAR TO
SELECT 'abc' SIMILAR TO 'abc', 'abc' SIMILAR TO 'a', 'abc' SIMILAR TO '%(b|d)%', 'abc' SIMILAR TO '(b|c)%'
SELECT 'abc' SIMILAR TO 'a%', 'abc' SIMILAR TO '_bc', 'abc' NOT SIMILAR TO 'a%'
SELECT 'abc' SIMILAR TO 'a[bc]+', 'a.c' SIMILAR TO 'a.c', 'abc' SIMILAR TO 'a.c'
SELECT 'aaa' SIMILAR TO 'a{3}', 'ab' SIMILAR TO 'a*b?', 'a+' SIMILAR TO 'a#+' ESCAPE '#'
-- 9.8 Data Type Formatting Functions
SELECT to_char(DATE '2024-03-05', 'YYYY-MM-DD')
SELECT to_char(TIMESTAMP '2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS'), to_char(TIMESTAMP '2024-03-05 14:07:09', 'HH12:MI AM')
SELECT to_char(TIMESTAMP '2024-03-05 14:07:09.123456', 'HH24:MI:SS.MS'), to_char(TIMESTAMP '2024-03-05 14:07:09.123456', 'US')
SELECT to_char(DATE '2024-03-05', 'Day, DD Month YYYY'), to_char(DATE '2024-03-05', 'FMDay, FMDD FMMonth YYYY')
SELECT to_char(DATE '2024-03-05', 'Dy Mon DD'), to_char(DATE '2024-03-05', 'DY MON dy mon')
SELECT to_char(DATE '2024-03-05', 'YY YYY Y,YYY Q WW W DDD D ID IW IYYY J')
SELECT to_char(DATE '2024-12-30', 'IYYY-IW-ID'), to_char(DATE '2021-01-03', 'IYYY-IW')
SELECT to_char(TIMESTAMP '2024-03-05 00:30:00', 'HH HH12 am pm A.M. P.M.'), to_char(TIMESTAMP '2024-03-05 12:00:00', 'HH12 PM')
SELECT to_char(DATE '2024-03-05', 'DDth Mon'), to_char(DATE '2024-03-01', 'FMDDth'), to_char(DATE '2024-03-22', 'DDTH'), to_char(DATE '2024-03-13', 'DDth')
SELECT to_char(DATE '2024-03-05', '"Year" YYYY, "quarter" Q'), to_char(DATE '2024-03-05', 'YYYY\"MM')
SELECT to_char(TIMESTAMP '2024-03-05 14:07:09', 'SSSS'), to_char(DATE '2024-03-05', 'CC'), to_char(DATE '2024-03-05', 'RM')
SELECT to_char(TIMESTAMPTZ '2024-03-05 14:07:09+00', 'YYYY-MM-DD HH24:MI:SS TZ OF')
SELECT to_char(INTERVAL '1 day 02:03:04', 'HH24:MI:SS'), to_char(INTERVAL '15 hours', 'HH12 HH24')
SELECT to_char(125, '999'), to_char(125.8::real, '999D9'), to_char(-125.8, '999D99S')
SELECT to_char(0.1, '0.9'), to_char(12, '9990999.9'), to_char(485, 'FM999'), to_char(-485, '999')
SELECT to_char(1485, '9,999'), to_char(1485, '9G999'), to_char(148.5, '999.999'), to_char(148.5, 'FM999.999')
SELECT to_char(3148.5, '9G999D999'), to_char(-485, '999S'), to_char(-485, '999MI'), to_char(485, 'PL999'), to_char(-485, '999PR')
SELECT to_char(485, 'SG999'), to_char(-485, 'FMSG999'), to_char(12345, '99'), to_char(1234.567, '99999.9')
SELECT to_char(482, '999th'), to_char(485, 'RN'), to_char(5.2, 'FMRN'), to_char(12, 'FM9990999.9')
SELECT to_char(0.0004859, '9.99EEEE'), to_char(1234567.8, '9.9EEEE')
SELECT to_char(123.456::numeric, '999.99'), to_char(123456789, 'FM999,999,999')
SELECT to_char(1.5::float8, '9.9'), to_char(-0.5, 'FM0.00'), to_char(0, '99.99'), to_char(0, 'FM90.99')
SELECT to_date('05 Dec 2000', 'DD Mon YYYY'), to_date('2000-12-05', 'YYYY-MM-DD'), to_date('20001205', 'YYYYMMDD')
SELECT to_date('2000 Dec', 'YYYY Mon'), to_date('5/12/2000', 'DD/MM/YYYY'), to_date('2024-060', 'YYYY-DDD')
SELECT to_date('2000-13-01', 'YYYY-MM-DD')
SELECT to_date('abc', 'YYYY-MM-DD')
SELECT to_timestamp('05 Dec 2000 14:30:15', 'DD Mon YYYY HH24:MI:SS'), to_timestamp('2000-12-05 02:30 PM', 'YYYY-MM-DD HH12:MI AM')
SELECT to_timestamp('2024-03-05 14:07:09.123', 'YYYY-MM-DD HH24:MI:SS.MS'), to_timestamp('2460000', 'J')
SELECT to_timestamp(1710000000), to_timestamp(0), to_timestamp(1710000000.5)
SELECT pg_typeof(to_timestamp(0)), pg_typeof(to_date('2000-01-01', 'YYYY-MM-DD'))
SELECT to_number('12,454.8-', '99G999D9S'), to_number('$1,234.56', 'L9,999.99'), to_number('-12.5', '999.9')
SELECT to_number('12,454', '99,999'), to_number('1234', '9999'), to_number(' 42', '999')
SELECT pg_typeof(to_number('12', '99')), pg_typeof(to_char(1, '9'))
-- 9.9 Date/Time Functions and Operators
SELECT DATE '2001-09-28' + 7, DATE '2001-10-01' - 7, DATE '2001-10-01' - DATE '2001-09-28'
SELECT DATE '2001-09-28' + INTERVAL '1 hour', DATE '2001-09-28' + TIME '03:00'
SELECT pg_typeof(DATE '2001-09-28' + INTERVAL '1 hour'), pg_typeof(DATE '2001-09-28' + 7), pg_typeof(DATE '2001-10-01' - DATE '2001-09-28')
SELECT TIMESTAMP '2001-09-28 01:00' + INTERVAL '23 hours', TIMESTAMP '2001-09-28 23:00' - INTERVAL '23 hours'
SELECT TIMESTAMP '2001-09-29 03:00' - TIMESTAMP '2001-09-27 12:00', pg_typeof(TIMESTAMP '2001-09-29 03:00' - TIMESTAMP '2001-09-27 12:00')
SELECT INTERVAL '1 day' + INTERVAL '1 hour', INTERVAL '1 day' - INTERVAL '1 hour', - INTERVAL '23 hours'
SELECT 900 * INTERVAL '1 second', 21 * INTERVAL '1 day', 3.5 * INTERVAL '1 hour', INTERVAL '1 hour' * 1.5
SELECT INTERVAL '1 hour' / 1.5, INTERVAL '1 day' / 3, INTERVAL '3 days' / 2
SELECT TIME '01:00' + INTERVAL '3 hours', TIME '05:00' - TIME '03:00', TIME '05:00' - INTERVAL '2 hours'
SELECT INTERVAL '1 day 01:30:00', INTERVAL '91800 seconds', INTERVAL '1 year 2 months', INTERVAL '14 months'
SELECT INTERVAL '1-2', INTERVAL '3 4:05:06', INTERVAL 'P1Y2M3DT4H5M6S', INTERVAL '-1 day +02:00'
SELECT INTERVAL '1.5 days', INTERVAL '0.5 months', INTERVAL '1 week', INTERVAL '1 millisecond', INTERVAL '100 microseconds'
SELECT INTERVAL '2 hours 30 minutes' > INTERVAL '2 hours', INTERVAL '1 day' = INTERVAL '24 hours', INTERVAL '1 month' = INTERVAL '30 days'
SELECT pg_typeof(INTERVAL '1 day'), pg_typeof(INTERVAL '1 day' * 2), pg_typeof(TIME '01:00')
SELECT age(TIMESTAMP '2001-04-10', TIMESTAMP '1957-06-13'), age(TIMESTAMP '2024-03-01', TIMESTAMP '2024-01-31')
SELECT age(DATE '2024-03-01', DATE '2023-03-01')
SELECT make_interval(days => 10), make_interval(1, 2, 3, 4, 5, 6, 7.5), make_interval(hours => 36)
SELECT make_date(2013, 7, 15), make_time(8, 15, 23.5), make_timestamp(2013, 7, 15, 8, 15, 23.5)
SELECT make_timestamptz(2013, 7, 15, 8, 15, 23.5)
SELECT make_date(2013, 2, 30)
SELECT justify_days(INTERVAL '35 days'), justify_hours(INTERVAL '27 hours'), justify_interval(INTERVAL '1 mon -1 hour')
SELECT date_part('hour', TIMESTAMP '2001-02-16 20:38:40'), date_part('month', INTERVAL '2 years 3 months')
SELECT extract(hour from TIMESTAMP '2001-02-16 20:38:40'), extract(year from DATE '2001-02-16'), extract(dow from DATE '2001-02-16')
SELECT extract(epoch from TIMESTAMP '2001-02-16 20:38:40.12'), extract(epoch from INTERVAL '5 days 3 hours'), extract(epoch from DATE '2001-02-16')
SELECT pg_typeof(extract(epoch from TIMESTAMP '2001-02-16 20:38:40')), pg_typeof(date_part('hour', TIMESTAMP '2001-02-16 20:38:40'))
SELECT extract(century from DATE '2001-02-16'), extract(decade from DATE '2001-02-16'), extract(millennium from DATE '2001-02-16')
SELECT extract(doy from DATE '2001-02-16'), extract(isodow from DATE '2001-02-18'), extract(isoyear from DATE '2006-01-01'), extract(week from DATE '2001-02-16')
SELECT extract(quarter from DATE '2001-02-16'), extract(day from DATE '2001-02-16'), extract(minute from TIME '17:12:28.5'), extract(second from TIME '17:12:28.5')
SELECT extract(milliseconds from TIME '17:12:28.5'), extract(microseconds from TIME '17:12:28.5'), extract(julian from DATE '2006-01-01')
SELECT extract(day from INTERVAL '40 days 1 minute'), extract(hour from INTERVAL '4 hours 3 minutes'), extract(minute from INTERVAL '4 hours 3 minutes')
SELECT date_trunc('hour', TIMESTAMP '2001-02-16 20:38:40'), date_trunc('year', TIMESTAMP '2001-02-16 20:38:40'), date_trunc('week', TIMESTAMP '2001-02-16 20:38:40')
SELECT date_trunc('month', DATE '2001-02-16'), pg_typeof(date_trunc('month', DATE '2001-02-16')), date_trunc('quarter', TIMESTAMP '2001-05-16 20:38:40')
SELECT date_trunc('hour', INTERVAL '3 days 02:47:33'), date_trunc('day', TIMESTAMPTZ '2001-02-16 20:38:40+00')
SELECT date_bin(INTERVAL '15 minutes', TIMESTAMP '2020-02-11 15:44:17', TIMESTAMP '2001-01-01'), date_bin(INTERVAL '15 minutes', TIMESTAMP '2020-02-11 15:44:17', TIMESTAMP '2001-01-01 00:02:30')
SELECT (DATE '2001-02-16', DATE '2001-12-21') OVERLAPS (DATE '2001-10-30', DATE '2002-10-30')
SELECT isfinite(DATE '2001-02-16'), isfinite(TIMESTAMP 'infinity'), isfinite(INTERVAL '4 hours')
SELECT DATE 'infinity', TIMESTAMP '-infinity', DATE 'infinity' > DATE '2024-01-01'
SELECT TIMESTAMP '2001-02-16 20:38:40' AT TIME ZONE 'America/Denver', TIMESTAMPTZ '2001-02-16 20:38:40+00' AT TIME ZONE 'America/Denver'
SELECT pg_typeof(TIMESTAMP '2001-02-16 20:38:40' AT TIME ZONE 'UTC'), pg_typeof(TIMESTAMPTZ '2001-02-16 20:38:40+00' AT TIME ZONE 'UTC')
SELECT TIMESTAMP '2001-02-16 20:38:40' AT TIME ZONE 'Asia/Tokyo', timezone('Asia/Tokyo', TIMESTAMPTZ '2001-02-16 20:38:40+00')
SELECT TIMESTAMPTZ '2001-02-16 20:38:40+02', TIMESTAMPTZ '2001-02-16 20:38:40-05:30', TIMESTAMP '2001-02-16 20:38:40.5'
SELECT TIMESTAMPTZ '2001-02-16 20:38:40+02'::timestamp, TIMESTAMP '2001-02-16 20:38:40'::timestamptz, DATE '2001-02-16'::timestamp
SELECT TIMESTAMP '2001-02-16 20:38:40'::date, TIMESTAMP '2001-02-16 20:38:40'::time, '2001-02-16'::date, '20:38'::time
SELECT '2001-02-30'::date
SELECT 'now'::date = current_date, current_date = CURRENT_DATE, pg_typeof(current_date), pg_typeof(now()), pg_typeof(current_timestamp)
SELECT pg_typeof(localtimestamp), pg_typeof(localtime), pg_typeof(current_time), localtimestamp <= now()::timestamp
SELECT now() = current_timestamp, now() = transaction_timestamp(), statement_timestamp() >= now(), clock_timestamp() >= now()
SELECT pg_typeof(timeofday()), pg_typeof(clock_timestamp())
SELECT generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01 03:00', INTERVAL '1 hour')
SELECT * FROM generate_series(DATE '2024-01-30', DATE '2024-02-02', INTERVAL '1 day')
SELECT TIMESTAMP '2024-01-31' + INTERVAL '1 month', TIMESTAMP '2024-02-29' + INTERVAL '1 year', DATE '2024-03-31' - INTERVAL '1 month'
SELECT TIMESTAMP '2024-06-01 00:00:00' + 5 * INTERVAL '1 second' * 1.1
SELECT to_char(TIMESTAMP '2024-01-01' + 90 * INTERVAL '1 minute', 'HH24:MI')
SELECT EXTRACT(YEAR FROM TIMESTAMP '2024-06-01 10:00') * 100 + EXTRACT(MONTH FROM TIMESTAMP '2024-06-01 10:00')
SELECT DATE '2024-02-28' + 1, DATE '2024-12-31' + 1, DATE '2024-01-01' - 1
SELECT TIMESTAMP '2024-01-01 10:00' < TIMESTAMP '2024-01-01 11:00', DATE '2024-01-01' < TIMESTAMP '2024-01-01 00:00:01', DATE '2024-01-02' = TIMESTAMP '2024-01-02'
-- 8.5 Date/Time Types: input and output
SELECT TIMESTAMP '2024-03-05 14:07:09.120', TIMESTAMP '2024-03-05T14:07:09', TIMESTAMP '2024-03-05'
SELECT DATE '2024-03-05', DATE 'March 5, 2024', DATE '20240305', '2024-3-5'::date
SELECT TIME '14:07:09.5', TIME '2:07 PM', '24:00:00'::time
SELECT TIMESTAMP 'epoch', DATE 'epoch', TIMESTAMPTZ 'epoch'
SELECT TIMESTAMP '1999-12-31 23:59:59.999999' + INTERVAL '1 microsecond'
SELECT TIMESTAMP '0044-03-15 12:00 BC', DATE '4713-01-01 BC'
SELECT TIMESTAMP '294277-01-01'
SELECT '2024-03-05 25:00'::timestamp
SELECT INTERVAL '1 year 2 months 3 days 04:05:06.789', INTERVAL '-1 year -2 mons', INTERVAL '0'
SELECT INTERVAL '1 day' * 1.5, INTERVAL '1 month' * 1.5, INTERVAL '1 month' / 2
SELECT INTERVAL '23:59:59.999999' + INTERVAL '1 microsecond', INTERVAL '48 hours', INTERVAL '1 day 24 hours'
SELECT INTERVAL '2 days' - INTERVAL '3 hours', INTERVAL '1 mon' - INTERVAL '1 day'
SELECT INTERVAL '3 hours' * -1, INTERVAL '1:30' * 2, INTERVAL '90 minutes'
SELECT pg_typeof(TIMESTAMPTZ '2024-01-01 00:00+00' - TIMESTAMPTZ '2023-01-01 00:00+00'), TIMESTAMPTZ '2024-01-01 00:00+00' - TIMESTAMPTZ '2023-01-01 00:00+00'
SELECT pg_typeof(TIMESTAMPTZ '2024-01-01 00:00+00' + INTERVAL '1 day'), pg_typeof(TIME '01:00' + INTERVAL '1 hour'), pg_typeof(TIMESTAMP '2024-01-01' - INTERVAL '1 day')
SELECT pg_typeof(DATE '2024-01-01' - INTERVAL '1 day'), pg_typeof(TIMESTAMP '2024-01-01'::date), pg_typeof(now() - now())
SELECT '1 day 2 hours'::interval, '3 weeks'::interval, '1.5 hours'::interval, '-30 minutes'::interval
SELECT CAST('10:00' AS interval), CAST('P3D' AS interval), CAST(INTERVAL '1 day' AS text)
SELECT 'abc'::interval
SELECT ts, ts + INTERVAL '90 minutes' FROM t ORDER BY ts LIMIT 2
SELECT ts - TIMESTAMP '2024-06-01 00:00:00' FROM t ORDER BY ts LIMIT 3
SELECT max(ts) - min(ts) FROM t
SELECT count(*) FROM t WHERE ts > TIMESTAMP '2024-06-01 06:00' - INTERVAL '30 minutes'
SELECT count(*) FROM t WHERE ts >= DATE '2024-06-01' + INTERVAL '2 hours'
SELECT extract(epoch from max(ts) - min(ts)) FROM t
SELECT date_trunc('day', ts)::date, count(*) FROM t GROUP BY 1 ORDER BY 1
SELECT to_char(date_trunc('hour', ts), 'YYYY-MM-DD HH24:00'), count(*) FROM t GROUP BY 1 ORDER BY 1
SELECT to_char(ts, 'HH24:MI:SS'), n FROM t WHERE country = 'US' ORDER BY ts LIMIT 3
SELECT ts::date AS d, ts::time AS tm FROM t ORDER BY ts LIMIT 2
SELECT ts AT TIME ZONE 'UTC' FROM t ORDER BY ts LIMIT 1
-- 5 and 8: views and other statements
CREATE VIEW compat_v AS SELECT country, count(*) AS k, sum(n) AS s FROM t GROUP BY country
SELECT * FROM compat_v ORDER BY country
SELECT k FROM compat_v WHERE country = 'DE'
CREATE OR REPLACE VIEW compat_v AS SELECT country, count(*) AS k, sum(n) AS s, max(x) AS m FROM t GROUP BY country
SELECT country, m FROM compat_v ORDER BY country
CREATE VIEW compat_w AS SELECT * FROM t WHERE country = 'FR'
SELECT count(*), sum(n) FROM compat_w WHERE ts >= '2024-06-01 02:00'
SELECT table_name, view_definition IS NOT NULL FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1
SELECT relname, relkind FROM pg_class WHERE relname LIKE 'compat_%' ORDER BY 1
SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE 'compat_%' ORDER BY 1
CREATE VIEW compat_v AS SELECT 1
DROP VIEW compat_w
SELECT count(*) FROM compat_w
DROP VIEW IF EXISTS compat_w
DROP VIEW compat_v
DROP VIEW compat_nonexistent
SELECT * FROM compat_nonexistent
CREATE TABLE compat_ins (ts timestamp, b boolean, i int, t text)
INSERT INTO compat_ins VALUES ('2024-01-01 10:00', true, 1, 'a'), ('2024-01-02', 'yes', ' 2 ', NULL)
INSERT INTO compat_ins (ts, b) VALUES ('2024-01-03', 1)
INSERT INTO compat_ins (ts, i) VALUES ('2024-01-05', 1, 2)
INSERT INTO compat_ins (ts, i) SELECT '2024-01-04 10:00', 4
INSERT INTO compat_ins (ts, b) SELECT ts, i FROM compat_ins
INSERT INTO compat_ins (ts, t) SELECT ts, i FROM compat_ins WHERE i > 1
SELECT ts, b, i, t FROM compat_ins ORDER BY ts, t
SELECT t::timestamp, ' 7 '::text::int, 'off'::text::boolean FROM (SELECT '2024-01-01 10:00'::text AS t) AS x
DROP TABLE compat_ins
CREATE TABLE compat_num (ts timestamp, x numeric, y numeric(10,2))
INSERT INTO compat_num VALUES ('2024-01-01', 1.5, 1), ('2024-01-02', 1.50, 2), ('2024-01-03', 2, 3), ('2024-01-04', 1.5e3, 4), ('2024-01-05', '0.250', 5), ('2024-01-06', NULL, 6), ('2024-01-07', -0.00, 7)
SELECT x, x::text, x + 1, x - 0.125, x * y, x * 2, -x FROM compat_num ORDER BY y
SELECT sum(x), min(x), max(x), avg(x), sum(x * y) FROM compat_num
SELECT y, sum(x), max(x + 1) FROM compat_num GROUP BY y ORDER BY y
SELECT s.z FROM (SELECT x AS z, y FROM compat_num WHERE x > 1) AS s ORDER BY s.y
SELECT x::text || '!', concat(x, '$') FROM compat_num WHERE x < 2 ORDER BY y
UPDATE compat_num SET x = 3.250 WHERE y = 1
SELECT x FROM compat_num WHERE y = 1
INSERT INTO compat_num VALUES ('2024-01-08', 0.123456789012345, 8)
DROP TABLE compat_num
SELECT nonexistent_column FROM t
SELECT nonexistent_function(1)
SELECT 1 +
SELECT 'a' + 1
SELECT count(*) FROM t WHERE country = 1
SELECT CAST('2024-01-01' AS date) = '2024-01-01'
SELECT 1::int = '1'
-- 9.16 JSON Functions and Operators
SELECT '{"a":1,"b":[1,2,3]}'::json -> 'b', '{"a":1,"b":[1,2,3]}'::json ->> 'a', '[1,2,3]'::json -> 2
SELECT '{"a":{"b":"foo"}}'::json -> 'a' ->> 'b', '[{"a":"foo"},{"b":"bar"}]'::json -> 0, '[1,2,3]'::json -> -1
SELECT '{"a":1,"b":2}'::jsonb, '{"b":2,"a":1,"a":3}'::jsonb, '[1, 2,  "x"]'::jsonb, '{"a": 1}'::json
SELECT '{"a":1,"b":[1,2,3]}'::jsonb -> 'b', '{"a":1,"b":[1,2,3]}'::jsonb ->> 'a', '{"a":1}'::jsonb ->> 'z'
SELECT '{"a":{"b":["x","y"]}}'::jsonb #> '{a,b}', '{"a":{"b":["x","y"]}}'::jsonb #>> '{a,b,1}'
SELECT '{"a":1, "b":2}'::jsonb @> '{"b":2}'::jsonb, '{"b":2}'::jsonb <@ '{"a":1, "b":2}'::jsonb, '[1,2,3]'::jsonb @> '[3,1]'
SELECT '{"a":1, "b":2}'::jsonb ? 'b', '["a", "b"]'::jsonb ? 'c', '{"a":1, "b":2}'::jsonb ?| array['b', 'd'], '{"a":1, "b":2}'::jsonb ?& array['a', 'b']
SELECT '["a", "b"]'::jsonb || '["c", "d"]'::jsonb, '{"a": "b"}'::jsonb || '{"c": "d"}'::jsonb, '{"a": "b", "c": "d"}'::jsonb - 'a', '[1,2,3]'::jsonb - 1
SELECT '{"a":[1,2]}'::jsonb #- '{a,0}', '{"a":1}'::jsonb = '{"a":1}'::jsonb
SELECT to_json('Fred said "Hi."'::text), to_jsonb(ARRAY[1, 2, 3]), to_json(42), to_json(true), to_json(NULL::text)
SELECT array_to_json(ARRAY[ARRAY[1, 5], ARRAY[99, 100]]), json_build_array(1, 2, 'foo', 4, 5), jsonb_build_array(1, 'x', NULL)
SELECT json_build_object('foo', 1, 2, 'bar'), jsonb_build_object('a', 1, 'b', true, 'c', NULL), json_object('{a, 1, b, "def", c, 3.5}')
SELECT json_object_agg(k, v ORDER BY k) FROM (VALUES ('a', 1), ('b', 2)) AS t(k, v)
SELECT jsonb_object_agg(k, v ORDER BY k) FROM (VALUES ('a', 1), ('b', 2)) AS t(k, v)
SELECT json_agg(x ORDER BY x) FROM (VALUES (1), (2), (NULL)) AS t(x)
SELECT jsonb_agg(x ORDER BY x DESC) FROM (VALUES (1), (2), (3)) AS t(x)
SELECT * FROM json_each('{"a":"foo", "b":"bar"}')
SELECT * FROM jsonb_each_text('{"a":"foo", "b":2}')
SELECT * FROM json_array_elements('[1,true, [2,false]]')
SELECT jsonb_array_elements_text('["foo", "bar"]')
SELECT json_array_length('[1,2,3,{"f1":1,"f2":[5,6]},4]'), jsonb_array_length('[]')
SELECT json_object_keys('{"f1":"abc","f2":{"f3":"a", "f4":"b"}}')
SELECT json_typeof('-123.4'), jsonb_typeof('"foo"'), json_typeof('null'), jsonb_typeof('{}'), jsonb_typeof('[1]'), jsonb_typeof('true')
SELECT json_extract_path('{"f2":{"f3":1},"f4":{"f5":99,"f6":"foo"}}', 'f4', 'f6'), jsonb_extract_path_text('{"f2":{"f3":1},"f4":{"f5":99,"f6":"foo"}}', 'f4', 'f6')
SELECT jsonb_set('[{"f1":1,"f2":null},2,null,3]', '{0,f1}', '[2,3,4]', false), jsonb_insert('{"a": [0,1,2]}', '{a, 1}', '"new_value"')
SELECT jsonb_strip_nulls('[{"f1":1, "f2":null}, 2, null, 3]'), jsonb_pretty('{"a":1}')
SELECT jsonb_path_query_array('{"a":[1,2,3,4,5]}', '$.a[*] ? (@ >= 2 && @ <= 4)'), jsonb_path_exists('{"a":[1,2,3]}', '$.a[*] ? (@ > 2)')
SELECT jsonb_path_query('{"a":[1,2,3]}', '$.a[*] ? (@ > 1)'), 'x' AS other
SELECT jsonb_path_query_first('{"a":[{"b":1},{"b":2}]}', '$.a[last].b'), jsonb_path_match('{"n":5}', '$.n > 4'), '{"a":[1,2]}'::jsonb @? '$.a[*] ? (@ == 2)', '{"a":[1,2]}'::jsonb @@ '$.a[*] > 5'
SELECT jsonb_path_query_array('{"a":[1,2.5,"x",null]}', '$.a[*].type()'), jsonb_path_query_array('[7, -1.5]', '$[*] ? (@ > 0) / 3'), jsonb_path_query_array('[1,2,3]', 'strict $.size()')
SELECT jsonb_path_exists('{"a":1}', 'strict $.b'), jsonb_path_exists('{"a":1}', 'strict $.b', '{}', true)
SELECT jsonb_path_query_array('["abc","Abd","x"]', '$[*] ? (@ like_regex "^a" flag "i" || @ starts with "x")'), jsonb_path_query_array('{"a":{"b":{"c":1}}}', '$.**{1 to last}')
SELECT jsonb_path_query_array('[1,5,9]', '$[*] ? (@ >= $lo && @ <= $hi)', '{"lo":2,"hi":9}'), jsonb_path_query('1', '$ + ')
SELECT '{"a":' ::json
SELECT '{"a": 1}'::json ->> 'a' = '1', ('{"n": 5}'::jsonb ->> 'n')::int + 1
SELECT pg_typeof('{}'::json), pg_typeof('{}'::jsonb), pg_typeof('{"a":1}'::jsonb -> 'a'), pg_typeof('{"a":1}'::jsonb ->> 'a')
SELECT row_to_json(ROW(1, 'foo')), to_json(ROW(1, 'x'))
-- 9.14 UUID Functions and 8.12 UUID Type
SELECT length(gen_random_uuid()::text), pg_typeof(gen_random_uuid()), gen_random_uuid() <> gen_random_uuid()
SELECT 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, '{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}'::uuid
SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid
SELECT 'not-a-uuid'::uuid
-- 9.18 Conditional Expressions
SELECT CASE WHEN 1 = 1 THEN 'one' ELSE 'other' END, CASE 2 WHEN 1 THEN 'one' WHEN 2 THEN 'two' END, CASE WHEN false THEN 1 END
SELECT coalesce(NULL, NULL, 'x'), coalesce(NULL::int, 5), coalesce(1, 2)
SELECT nullif(1, 1), nullif(1, 2), nullif('a', 'b')
SELECT greatest(1, 5, 3), least(1, 5, 3), greatest('a', 'c', 'b'), greatest(1, NULL, 3), least(NULL::int, NULL)
SELECT greatest(1, 2.5), least(DATE '2024-01-01', DATE '2023-01-01')
SELECT CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero' END FROM (VALUES (1), (-1), (0)) AS v(x) ORDER BY x
SELECT CASE WHEN 1 = 0 THEN 1 / 0 ELSE 1 END
-- 9.19 Array Functions and Operators
SELECT ARRAY[1, 2, 3], ARRAY['a', 'b'], ARRAY[[1, 2], [3, 4]], ARRAY[]::int[]
SELECT ARRAY[1, 2, 3] @> ARRAY[2, 3], ARRAY[1, 2] <@ ARRAY[1, 2, 3], ARRAY[1, 2] && ARRAY[2, 5]
SELECT ARRAY[1, 2] || ARRAY[3, 4], 3 || ARRAY[4, 5], ARRAY[1, 2] || 3
SELECT (ARRAY[10, 20, 30])[2], (ARRAY[10, 20, 30])[5], (ARRAY[10, 20, 30])[2:3], (ARRAY[10, 20, 30])[0]
SELECT array_append(ARRAY[1, 2], 3), array_prepend(1, ARRAY[2, 3]), array_cat(ARRAY[1, 2], ARRAY[3])
SELECT array_length(ARRAY[1, 2, 3], 1), array_length(ARRAY[]::int[], 1), cardinality(ARRAY[[1, 2], [3, 4]]), array_ndims(ARRAY[[1, 2], [3, 4]])
SELECT array_dims(ARRAY[[1, 2, 3], [4, 5, 6]]), array_lower(ARRAY[1, 2], 1), array_upper(ARRAY[1, 2, 3], 1)
SELECT array_position(ARRAY['sun', 'mon', 'tue'], 'mon'), array_position(ARRAY[1, 2], 5), array_positions(ARRAY['A', 'A', 'B', 'A'], 'A')
SELECT array_remove(ARRAY[1, 2, 3, 2], 2), array_replace(ARRAY[1, 2, 5, 4], 5, 3), array_to_string(ARRAY[1, 2, 3], '~^~')
SELECT array_fill(7, ARRAY[3]), trim_array(ARRAY[1, 2, 3, 4, 5, 6], 2)
SELECT 3 = ANY(ARRAY[1, 2, 3]), 3 = ALL(ARRAY[1, 2, 3]), 5 > ALL(ARRAY[1, 2, 3]), 'b' = ANY(ARRAY['a', 'b'])
SELECT ARRAY[1, 2] = ARRAY[1, 2], ARRAY[1, 2] < ARRAY[1, 3], ARRAY[1, NULL] IS NULL
SELECT array_agg(x ORDER BY x DESC) FROM (VALUES (3), (1), (2)) AS t(x)
SELECT array_agg(x ORDER BY x), array_agg(DISTINCT x ORDER BY x DESC) FROM (VALUES (3), (1), (2), (1)) AS t(x)
SELECT unnest(ARRAY[1, 2, 3])
SELECT unnest(ARRAY['a', 'b']), 1
SELECT * FROM unnest(ARRAY[1, 2], ARRAY['foo', 'bar', 'baz']) AS t(a, b)
SELECT * FROM unnest(ARRAY['x', 'y']) WITH ORDINALITY AS t(v, n)
SELECT pg_typeof(ARRAY[1, 2]), pg_typeof(ARRAY['a']), pg_typeof(array_agg(1.5))
SELECT string_to_array('1,2,3', ',')::int[]
-- 9.21 Aggregate Functions (over t)
SELECT count(*), count(n), count(DISTINCT country), sum(n), avg(n), min(n), max(n) FROM t
SELECT sum(x), avg(x), min(x), max(x) FROM t
SELECT round(avg(n), 6), round(avg(x)::numeric, 6) FROM t
SELECT bool_and(n > -400), bool_or(n > 600), every(n > -400) FROM t
SELECT bit_and(n), bit_or(n), bit_xor(n) FROM t WHERE n > 0
SELECT round(variance(n), 4), round(var_samp(n), 4), round(var_pop(n), 4) FROM t
SELECT round(stddev(n), 4), round(stddev_samp(n), 4), round(stddev_pop(n), 4) FROM t
SELECT round(variance(x)::numeric, 4), round(stddev(x)::numeric, 4) FROM t
SELECT pg_typeof(variance(n)), pg_typeof(stddev(x)), pg_typeof(variance(1::int4)), pg_typeof(avg(1::int8)) FROM t LIMIT 1
SELECT round(corr(n, x)::numeric, 8), round(covar_pop(n, x)::numeric, 4), round(covar_samp(n, x)::numeric, 4) FROM t
SELECT round(regr_slope(x, n)::numeric, 8), round(regr_intercept(x, n)::numeric, 6), regr_count(x, n), round(regr_r2(x, n)::numeric, 8) FROM t
SELECT round(regr_avgx(x, n)::numeric, 6), round(regr_avgy(x, n)::numeric, 6), round(regr_sxx(x, n)::numeric, 2), round(regr_syy(x, n)::numeric, 2), round(regr_sxy(x, n)::numeric, 2) FROM t
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n), percentile_disc(0.5) WITHIN GROUP (ORDER BY n) FROM t
SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY x), percentile_disc(0.9) WITHIN GROUP (ORDER BY x) FROM t
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY country) FROM t
SELECT percentile_cont(ARRAY[0.25, 0.5]) WITHIN GROUP (ORDER BY n) FROM t
SELECT mode() WITHIN GROUP (ORDER BY country) FROM t
SELECT mode() WITHIN GROUP (ORDER BY n) FROM t
SELECT string_agg(DISTINCT country, ',' ORDER BY country) FROM t
SELECT string_agg(country, '|' ORDER BY country DESC) FROM (SELECT DISTINCT country FROM t) AS s
SELECT array_agg(DISTINCT country ORDER BY country) FROM t
SELECT count(*) FILTER (WHERE country = 'DE'), sum(n) FILTER (WHERE x > 10) FROM t
SELECT country, count(*) FROM t GROUP BY country HAVING count(*) > 3000 ORDER BY country
SELECT sum(n), count(*), avg(n), max(country), bool_and(true) FROM t WHERE false
SELECT count(*) FROM (SELECT country FROM t WHERE country = 'DE' LIMIT 1) AS s
SELECT count(*) FROM t WHERE country = 'DE' GROUP BY () 
SELECT country, page IS NULL, count(*) FROM t GROUP BY ROLLUP (country, page IS NULL) ORDER BY 1, 2, 3
SELECT country, count(*) FROM t GROUP BY CUBE (country) ORDER BY 1
SELECT country, grouping(country), count(*) FROM t GROUP BY GROUPING SETS ((country), ()) ORDER BY 1
SELECT sum(n::int4), pg_typeof(sum(n::int4)), sum(x::real)::numeric(20, 2) FROM t
SELECT sum(9223372036854775807) FROM t
SELECT avg(DISTINCT n), sum(DISTINCT n), count(DISTINCT (country, page)) FROM t
SELECT min(ts), max(ts), min(page), max(page) FROM t
SELECT min(country COLLATE "C"), max(country) FROM t
SELECT xmlagg(NULL::xml) FROM t WHERE false
-- 9.22 Window Functions (over t)
SELECT ts, n, row_number() OVER (ORDER BY ts) FROM t ORDER BY ts LIMIT 5
SELECT ts, n, rank() OVER (ORDER BY n DESC), dense_rank() OVER (ORDER BY n DESC) FROM t WHERE country = 'US' ORDER BY n DESC NULLS LAST, ts LIMIT 6
SELECT ts, n, sum(n) OVER (ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t WHERE country = 'FR' ORDER BY ts LIMIT 6
SELECT ts, n, lag(n) OVER (ORDER BY ts), lead(n, 2, -1) OVER (ORDER BY ts) FROM t WHERE country = 'FR' ORDER BY ts LIMIT 5
SELECT ts, first_value(n) OVER w, last_value(n) OVER w, nth_value(n, 2) OVER w FROM t WHERE country = 'de' WINDOW w AS (ORDER BY ts ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) ORDER BY ts LIMIT 5
SELECT country, n, round(percent_rank() OVER (PARTITION BY country ORDER BY n)::numeric, 6), round(cume_dist() OVER (PARTITION BY country ORDER BY n)::numeric, 6) FROM t WHERE n > 690 ORDER BY country, n LIMIT 8
SELECT ts, ntile(3) OVER (ORDER BY ts) FROM t WHERE country = 'US' AND n > 650 ORDER BY ts
SELECT country, count(*) OVER (PARTITION BY country) FROM t WHERE n = 100 ORDER BY country, ts
SELECT ts, avg(n) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '10 seconds' PRECEDING AND CURRENT ROW) FROM t WHERE country = 'US' ORDER BY ts LIMIT 4
SELECT ts, sum(n) OVER (ORDER BY ts GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t WHERE country = 'US' ORDER BY ts LIMIT 4
SELECT ts, n, sum(n) OVER (ORDER BY ts) FROM t WHERE country = 'US' ORDER BY ts LIMIT 4
SELECT ts, n, max(n) OVER (PARTITION BY country ORDER BY ts ROWS UNBOUNDED PRECEDING) FROM t WHERE country = 'US' ORDER BY ts LIMIT 4
SELECT ts, n, sum(n) OVER (ORDER BY ts ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING EXCLUDE CURRENT ROW) FROM t WHERE country = 'US' AND n > 690 ORDER BY ts
SELECT country, n FROM (SELECT country, n, row_number() OVER (PARTITION BY country ORDER BY n DESC NULLS LAST, ts) AS r FROM t) AS s WHERE r = 1 ORDER BY country
SELECT pg_typeof(row_number() OVER ()), pg_typeof(rank() OVER ()), pg_typeof(percent_rank() OVER ()), pg_typeof(ntile(2) OVER ())
-- 9.23 Subquery Expressions
SELECT EXISTS (SELECT 1), NOT EXISTS (SELECT 1 WHERE false)
SELECT EXISTS (SELECT 1 FROM t WHERE country = 'XX'), EXISTS (SELECT 1 FROM t WHERE country = 'DE')
SELECT 1 IN (SELECT 1), 2 NOT IN (SELECT 1), NULL::int IN (SELECT 1), 2 NOT IN (SELECT NULL::int)
SELECT (SELECT 1), (SELECT 2)
SELECT (SELECT max(n) FROM t), (SELECT min(n) FROM t)
SELECT (SELECT 1 WHERE false)
SELECT (SELECT n FROM t LIMIT 2)
SELECT 5 > ANY (SELECT n FROM t WHERE country = 'US'), 5 > ALL (SELECT n FROM t WHERE n IS NOT NULL), 1000 > ALL (SELECT n FROM t WHERE n IS NOT NULL)
SELECT count(*) FROM t AS a WHERE n = (SELECT max(n) FROM t AS b WHERE b.country = a.country)
SELECT country, (SELECT count(*) FROM t AS b WHERE b.country = a.country) FROM (SELECT DISTINCT country FROM t) AS a ORDER BY country
SELECT count(*) FROM t WHERE EXISTS (SELECT 1 FROM t AS b WHERE b.page = t.page AND b.n > 690)
SELECT count(*) FROM t WHERE (country, page) IN (SELECT country, page FROM t WHERE n = 100)
SELECT ROW(1, 2) = ROW(1, 2), ROW(1, 2) < ROW(1, 3), (1, 'a') = (1, 'a')
-- 9.25 Set Returning Functions
SELECT generate_series(1, 3)
SELECT generate_series(1, 10, 3), 'x'
SELECT generate_series(5, 1, -2)
SELECT * FROM generate_series(1, 3) AS s(i)
SELECT * FROM generate_series(1, 3) WITH ORDINALITY AS s(v, n)
SELECT * FROM generate_series(0.5, 2.0, 0.5)
SELECT sum(i) FROM generate_series(1, 100) AS s(i)
SELECT i, i * i FROM generate_series(1, 4) AS i ORDER BY i DESC
SELECT * FROM generate_series(1, 0)
SELECT * FROM generate_series(1, 5, 0)
SELECT generate_subscripts(ARRAY['a', 'b', 'c'], 1)
SELECT pg_typeof(generate_series(1, 2)), pg_typeof(generate_series(1::int8, 2))
SELECT count(*) FROM t, generate_series(1, 2) AS g
SELECT s.d::date FROM generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-03', INTERVAL '1 day') AS s(d)
SELECT date_trunc('hour', s.h) AS h, count(t.ts) FROM generate_series(TIMESTAMP '2024-06-01 00:00', TIMESTAMP '2024-06-01 08:00', INTERVAL '2 hours') AS s(h) LEFT JOIN t ON date_trunc('hour', t.ts) = s.h GROUP BY 1 ORDER BY 1
-- 7 Queries: VALUES, set operations, WITH, ordering, DISTINCT ON
VALUES (1, 'one'), (2, 'two'), (3, 'three')
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(num, letter) WHERE num > 1
SELECT 1 UNION SELECT 2 UNION SELECT 1 ORDER BY 1
SELECT 1 UNION ALL SELECT 1 ORDER BY 1
SELECT x FROM (VALUES (1), (2), (3)) AS a(x) INTERSECT SELECT x FROM (VALUES (2), (3), (4)) AS b(x) ORDER BY 1
SELECT x FROM (VALUES (1), (2), (3)) AS a(x) EXCEPT SELECT x FROM (VALUES (2)) AS b(x) ORDER BY 1
SELECT x FROM (VALUES (1), (1), (2)) AS a(x) EXCEPT ALL SELECT x FROM (VALUES (1)) AS b(x) ORDER BY 1
SELECT 1 AS a UNION SELECT 2.5 ORDER BY 1
WITH c AS (SELECT country, count(*) AS k FROM t GROUP BY country) SELECT * FROM c WHERE k > 2000 ORDER BY country
WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5) SELECT sum(i) FROM r
WITH RECURSIVE f(a, b) AS (SELECT 0, 1 UNION ALL SELECT b, a + b FROM f WHERE b < 100) SELECT max(a) FROM f
SELECT x FROM (VALUES (3), (NULL), (1)) AS v(x) ORDER BY x
SELECT x FROM (VALUES (3), (NULL), (1)) AS v(x) ORDER BY x DESC
SELECT x FROM (VALUES (3), (NULL), (1)) AS v(x) ORDER BY x NULLS FIRST
SELECT x FROM (VALUES (3), (NULL), (1)) AS v(x) ORDER BY x DESC NULLS LAST
SELECT DISTINCT ON (country) country, ts, n FROM t WHERE n > 680 ORDER BY country, ts
SELECT country FROM t GROUP BY country ORDER BY count(*) DESC, country LIMIT 2 OFFSET 1
SELECT n FROM t WHERE n IS NOT NULL ORDER BY n DESC, ts FETCH FIRST 3 ROWS ONLY
SELECT n FROM t WHERE n IS NOT NULL ORDER BY n, ts OFFSET 5 ROWS FETCH NEXT 2 ROWS ONLY
SELECT count(*) FROM t a LEFT JOIN (SELECT DISTINCT page FROM t WHERE n > 690) b ON a.page = b.page WHERE b.page IS NULL
SELECT count(*) FROM (SELECT DISTINCT country FROM t) a CROSS JOIN (SELECT DISTINCT country FROM t) b
SELECT count(*) FROM t a FULL JOIN (VALUES ('DE'), ('ZZ')) AS b(c) ON a.country = b.c WHERE a.ts IS NULL
SELECT x, y FROM (VALUES (1, 2)) AS a(x, y) NATURAL JOIN (VALUES (1, 3)) AS b(x, z)
SELECT * FROM (VALUES (1)) AS a(x) JOIN LATERAL (SELECT a.x + 1 AS y) AS b ON true
SELECT 'a' AS "Mixed Case", 1 AS "select"
SELECT 1 AS x ORDER BY x LIMIT ALL
SELECT count(*) FROM t TABLESAMPLE SYSTEM (100)
TABLE t LIMIT 0
SELECT
SELECT 1 WHERE NULL
SELECT * FROM (SELECT 1 AS a, 2 AS b) s
-- 9.26 System Information Functions
SELECT current_schema(), current_user = session_user, user = current_user, current_database() = current_catalog
SELECT current_schemas(false), current_schemas(true)
SELECT pg_typeof(current_database()), pg_typeof(current_user), pg_typeof(version())
SELECT has_table_privilege('t', 'SELECT'), has_schema_privilege('public', 'USAGE')
SELECT pg_typeof(pg_backend_pid()), pg_backend_pid() > 0, inet_server_port() IS NULL
SELECT current_setting('DateStyle'), current_setting('server_encoding'), current_setting('client_encoding')
SELECT current_setting('TimeZone'), current_setting('integer_datetimes'), current_setting('standard_conforming_strings')
SELECT 't'::regclass = 't'::regclass, pg_typeof('t'::regclass), 'int4'::regtype, 'integer'::regtype::oid
SELECT format_type(23, -1), format_type(1043, 14), format_type(1700, 655366)
SELECT col_description('t'::regclass, 1), obj_description('t'::regclass, 'pg_class')
SELECT pg_get_userbyid(10) IS NOT NULL, pg_encoding_to_char(6)
SELECT txid_current() > 0
SELECT pg_sleep(0)
SELECT pg_column_size(1::int4), pg_column_size(1::int8)
SELECT 'int4'::regtype::text, 'bigint'::regtype::text, 'timestamptz'::regtype::text
