-- rev1: create the people table
CREATE TABLE people (
    id   serial PRIMARY KEY,
    name text NOT NULL
);
