-- What a token may do (`export-host token create --read-only --loaders ...`):
-- JSON such as {"read_only":true,"loaders":["csv"],"formats":["csv"]}; NULL
-- for a token with its user's full rights (every token made before). Text,
-- like the SQLite column, so both backends read it the same way.

ALTER TABLE tokens ADD COLUMN scope TEXT CHECK (scope IS NULL OR scope::jsonb IS NOT NULL);
