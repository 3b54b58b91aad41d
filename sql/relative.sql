-- relative targets: "-N" goes N steps back the way the track came (its
-- steps in effect in trek.history), "+N" N steps of the way to head
CREATE EXTENSION trek;
SET client_min_messages = warning;
-- a chain initial -> a -> b -> c with its downs, and a shortcut from c
-- straight down to initial, which "-N" does not take
SELECT jsonb_build_object(
	'20240101_initial_up_a.sql', 'CREATE TABLE rel_a (i int);',
	'20240101_a_down_initial.sql', 'DROP TABLE rel_a;',
	'20240102_a_up_b.sql', 'CREATE TABLE rel_b (i int);',
	'20240102_b_down_a.sql', 'DROP TABLE rel_b;',
	'20240103_b_up_c.sql', 'CREATE TABLE rel_c (i int);',
	'20240103_c_down_b.sql', 'DROP TABLE rel_c;',
	'20240104_c_down_initial.sql', 'DROP TABLE rel_c, rel_b, rel_a;') AS folder \gset
CREATE FUNCTION steps(plan jsonb) RETURNS text LANGUAGE sql AS
$$SELECT (plan ->> 'from') || ' -> ' || (plan ->> 'to') || ': ' ||
		 coalesce(string_agg(s ->> 'file', ', ' ORDER BY n), 'no steps')
	FROM jsonb_array_elements(plan -> 'steps') WITH ORDINALITY AS t(s, n)$$;

-- "+N" from initial
SELECT steps(trek_plan(:'folder'::jsonb, '+1', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '+3', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '+4', track => 'rel'));
CALL trek_migrate(:'folder'::jsonb, '+2', track => 'rel');
SELECT trek_current('rel');
SELECT trek_execute(trek_plan(:'folder'::jsonb, '+1', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '+1', track => 'rel'));

-- "-N" from c: the way the track came, not the shortcut
SELECT steps(trek_plan(:'folder'::jsonb, '-1', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '-2', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '-3', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, 'initial', track => 'rel'));
SELECT steps(trek_plan(:'folder'::jsonb, '-4', track => 'rel'));
CALL trek_migrate(:'folder'::jsonb, '-1', track => 'rel');
SELECT trek_current('rel'), to_regclass('rel_c');
-- back at b by a down step: b's own up step is the newest in effect
SELECT steps(trek_plan(:'folder'::jsonb, '-1', track => 'rel'));
SELECT trek_execute(trek_plan(:'folder'::jsonb, '-2', track => 'rel'));
SELECT trek_current('rel'), to_regclass('rel_a');
SELECT steps(trek_plan(:'folder'::jsonb, '-1', track => 'rel'));

-- a missing down file is named by the name it would have
CALL trek_migrate(:'folder'::jsonb, 'c', track => 'rel');
SELECT steps(trek_plan(:'folder'::jsonb - '20240102_b_down_a.sql', '-2', track => 'rel'));
-- and the step back from c, here the first one missing
SELECT steps(trek_plan(:'folder'::jsonb - '20240103_c_down_b.sql', '-1', track => 'rel'));

-- a track stamped where it is has no step to go back
SELECT trek_stamp(:'folder'::jsonb, 'b', track => 'stamped');
SELECT steps(trek_plan(:'folder'::jsonb, '-1', track => 'stamped'));
SELECT steps(trek_plan(:'folder'::jsonb, '+1', track => 'stamped'));

-- directions that contradict the target, and what is no relative target
SELECT trek_plan(:'folder'::jsonb, '-1', 'up', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '+1', 'down', track => 'stamped');
SELECT steps(trek_plan(:'folder'::jsonb, '-1', 'down', track => 'rel'));
SELECT trek_plan(:'folder'::jsonb, '-0', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '+x', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '-', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '--1', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '-+1', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '-1 ', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '-99999999999999999999', track => 'rel');
SELECT trek_plan(:'folder'::jsonb, '+500001', track => 'rel');
-- nothing of these was applied
SELECT trek_current('rel'), trek_current('stamped'),
	   (SELECT count(*) FROM trek.history) AS history_rows;

DROP FUNCTION steps(jsonb);
DROP TABLE rel_a, rel_b, rel_c;
DROP EXTENSION trek;
