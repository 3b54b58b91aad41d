-- back to rev2: drop the email index and column
DROP INDEX people_email_idx;
ALTER TABLE people DROP COLUMN email;
