-- rev3: people get an email address, searchable through an index
ALTER TABLE people ADD COLUMN email text;
CREATE INDEX people_email_idx ON people (email);
