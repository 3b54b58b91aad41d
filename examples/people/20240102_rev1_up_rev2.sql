-- rev2: add a few people
INSERT INTO people (name) VALUES
    ('Ada Lovelace'),
    ('Grace Hopper'),
    ('Edsger Dijkstra');
