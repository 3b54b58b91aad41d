-- back to initial: drop the people table
DROP TABLE people;
