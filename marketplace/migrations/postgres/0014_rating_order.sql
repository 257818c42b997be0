-- `GET /v1/plugins?sort=rating` orders by the damped rating (catalog::search, Sort::Rating's
-- key expression, which a unit test holds this index to): an index on exactly that expression
-- lets PostgreSQL read the first page in order instead of sorting every plugin.
CREATE INDEX plugins_rating ON plugins ((CASE WHEN rating_count = 0 THEN -1 ELSE (10 * 3000 + rating_sum * 1000) / (10 + rating_count) END) DESC, id);
