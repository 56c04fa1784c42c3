-- How far a running export has come: rows and bytes written, rate and
-- elapsed time, published by the daemon running it at most once a second
-- and replaced by the final figures when it ends (docs/operations.md,
-- "Progress"). NULL until the first figures.
ALTER TABLE exports ADD COLUMN progress JSONB;
