-- back to rev1: remove the people rev2 added
DELETE FROM people
WHERE name IN ('Ada Lovelace', 'Grace Hopper', 'Edsger Dijkstra');
