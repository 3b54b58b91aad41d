-- planning: shortest paths, ties, heads, directions, unknown revisions
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;

\set masked :abs_srcdir '/test/regress/masked.sql'
\i :masked
\set graph :fixtures '/graph'

CREATE FUNCTION steps(plan jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(s ->> 'file', ', ' ORDER BY n), '(none)')
	  FROM jsonb_array_elements(plan -> 'steps') WITH ORDINALITY AS a(s, n)
$$;

-- the shortcut a -> d wins over a -> b -> c -> d
SELECT steps(trek_plan(:'graph', 'd', track => 'graph'));
-- equal paths via p and via q: the smaller file name decides, every time
SELECT steps(trek_plan(:'graph', 'z', track => 'graph'));
-- two heads
SELECT masked(:'graph', $$SELECT trek_plan($1, 'head', track => 'graph')$$);
-- a cycle leaves no head
SELECT masked(:'fixtures' || '/cycle', $$SELECT trek_plan($1, 'head')$$);
-- target = current revision: an empty plan
SELECT masked(:'graph', $$SELECT trek_plan($1, 'initial', track => 'graph')$$);
-- an unknown target gets close names in the hint
SELECT masked(:'graph', $$SELECT trek_plan($1, 'zz', track => 'graph')$$);
SELECT masked(:'graph', $$SELECT trek_plan($1, 'nothing_like_it', track => 'graph')$$);
-- explicit directions
SELECT trek_plan(:'graph', 'd', 'down', 'graph');
SELECT trek_plan(:'graph', 'd', 'sideways', 'graph');

-- move the track to d, then plan from there
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'graph', 'd', track => 'graph'));
\set VERBOSITY default
SELECT trek_current('graph'), trek_current();
SELECT steps(trek_plan(:'graph', 'initial', track => 'graph'));
-- auto goes down when up cannot reach: d -> c -> b
SELECT trek_plan(:'graph', 'b', track => 'graph') ->> 'direction' AS direction,
	   steps(trek_plan(:'graph', 'b', track => 'graph'));
SELECT trek_plan(:'graph', 'b', 'up', 'graph');
-- z is in neither direction from d
SELECT trek_plan(:'graph', 'z', track => 'graph');

-- the plan's shape
SELECT jsonb_pretty(trek_plan(:'graph', 'a', track => 'graph') - 'dir');

-- back to initial
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'graph', 'initial', track => 'graph'));
\set VERBOSITY default
SELECT track, from_revision, to_revision, direction, file, length(sha256)
  FROM trek.history WHERE track = 'graph' ORDER BY id;

DROP FUNCTION masked(text, text), steps(jsonb);
DROP EXTENSION trek;
