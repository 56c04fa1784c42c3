-- What a token may do (`export-host token create --read-only --loaders ...`):
-- JSON such as {"read_only":true,"loaders":["csv"],"formats":["csv"]}; NULL
-- for a token with its user's full rights (every token made before).

ALTER TABLE tokens ADD COLUMN scope TEXT CHECK (scope IS NULL OR json_valid(scope));
