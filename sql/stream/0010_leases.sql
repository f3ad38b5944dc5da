-- Stream engine migration 10: the ticker's leader lease (docs/deployment.md).
--
-- The Ticker used to be elected by a session advisory lock held on its own
-- connection. Behind a transaction-mode pooler (PgBouncer) a session lock is
-- taken on whichever server session ran that transaction and does not follow
-- the client: two tickers were leader at once. Leadership is now this one
-- row: the holder renews expires_at while it leads; another ticker takes the
-- row over only once it has expired (or was released on a clean stop).
-- Times are the server's clock, so the tickers' clocks do not matter.

CREATE TABLE @schema@.ticker_lease (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL
);

SELECT @schema@._apply_grants();
