-- The benchmark's data set, made up, generated in SQL. Run as a superuser (loading bypasses
-- row-level security) after the migrations:
--   psql -v set=small|large -f bench/data.sql
--
--   small: 200 shops (org_s1..org_s200) x 50 members = 10,000 rows
--   large: the same 200 small shops, plus 5,000 shops (org_l1..org_l5000) x 200 members
--          = 1,000,000 rows, plus 5 big shops (org_x1..org_x5) x 5,000 members
--
-- Member ids are deterministic so the load generator can name them without a lookup:
-- <shop number, 8 hex digits>-0000-4000-8000-<member number, 12 hex digits>.
-- About 1 member in 8 is inactive; roles: one ADMIN per shop, ~10% MANAGER, ~30% ASSISTANT.

\set ON_ERROR_STOP on

CREATE FUNCTION pg_temp.bench_fill(prefix text, shops int, members int) RETURNS bigint
LANGUAGE sql AS $$
  WITH ins AS (
    INSERT INTO staff_members (organization_id, id, clerk_id, full_name, email, role,
                               department, is_active, avatar_url, created_at, updated_at)
    SELECT 'org_' || prefix || s,
           (lpad(to_hex(s), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(m), 12, '0'))::uuid,
           CASE WHEN h % 10 < 7 THEN 'user_' || substr(md5(prefix || s || '/' || m), 1, 24) END,
           fn || ' ' || ln,
           lower(fn) || '.' || lower(ln) || m || '@' || prefix || s || '.optica.example',
           CASE WHEN m = 1 THEN 'ADMIN' WHEN h % 10 = 1 THEN 'MANAGER'
                WHEN h % 10 IN (2, 3, 4) THEN 'ASSISTANT' ELSE 'STAFF' END,
           (ARRAY['Sales', 'Optometry', 'Lab', 'Front desk', 'Contact lenses', NULL])[1 + h % 6],
           m = 1 OR h % 8 <> 0,
           CASE WHEN h % 3 = 0 THEN 'https://img.example/avatars/' || prefix || s || '-' || m || '.png' END,
           now() - make_interval(days => h % 1500),
           now() - make_interval(days => h % 90)
      FROM generate_series(1, shops) AS s,
           generate_series(1, members) AS m,
           LATERAL (SELECT abs(hashtext(prefix || s || '.' || m)) AS h) AS hh,
           LATERAL (SELECT (ARRAY['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Fábio', 'Gabriela',
                    'Heitor', 'Isabela', 'João', 'Karina', 'Lucas', 'Mariana', 'Nicolas', 'Olívia',
                    'Paulo', 'Quitéria', 'Rafael', 'Sofia', 'Tiago', 'Úrsula', 'Vitor', 'Wanda',
                    'Xavier', 'Yara', 'Zeca', 'Beatriz', 'Caio', 'Débora', 'Eduardo', 'Fernanda',
                    'Gustavo', 'Helena', 'Igor', 'Júlia', 'Leonardo', 'Marta', 'Natália', 'Otávio',
                    'Priscila'])[1 + (h / 7) % 40] AS fn,
                    (ARRAY['Silva', 'Santos', 'Oliveira', 'Souza', 'Rodrigues', 'Ferreira', 'Alves',
                    'Pereira', 'Lima', 'Gomes', 'Costa', 'Ribeiro', 'Martins', 'Carvalho', 'Almeida',
                    'Lopes', 'Soares', 'Fernandes', 'Vieira', 'Barbosa', 'Rocha', 'Dias', 'Nunes',
                    'Mendes', 'Moreira', 'Cardoso', 'Teixeira', 'Correia', 'Araújo', 'Machado',
                    'Freitas', 'Castro', 'Pinto', 'Moura', 'Cavalcanti', 'Monteiro', 'Batista',
                    'Campos', 'Farias', 'Ramos'])[1 + (h / 311) % 40] AS ln) AS names
    RETURNING 1)
  SELECT count(*) FROM ins
$$;

SELECT pg_temp.bench_fill('s', 200, 50) AS small_shops_rows;
\if :{?set}
\else
  \set set small
\endif
SELECT :'set' = 'large' AS is_large \gset
\if :is_large
  SELECT pg_temp.bench_fill('l', 5000, 200) AS shops_of_200_rows;
  SELECT pg_temp.bench_fill('x', 5, 5000) AS shops_of_5000_rows;
\endif
-- The throwaway cluster commits asynchronously (synchronous_commit=off): until the WAL
-- writer flushes the load's commit record, VACUUM may not mark its pages all-visible, and
-- the index-only scans of the stats query would then visit the heap. A checkpoint flushes
-- it first.
CHECKPOINT;
VACUUM (ANALYZE) staff_members;
SELECT count(*) AS rows, count(DISTINCT organization_id) AS shops,
       pg_size_pretty(pg_total_relation_size('staff_members')) AS size
  FROM staff_members;
