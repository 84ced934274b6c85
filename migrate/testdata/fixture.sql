-- Fixture for the migrate package's tests: small, deterministic tables
-- (no random(), no now() in the data) so that reports and golden files are
-- stable. Never analyzed: reltuples stays -1 and Run counts the rows.

CREATE TABLE public.customers (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL,
    email varchar(200),
    plan  text NOT NULL DEFAULT 'free'
);

CREATE TABLE public.products (
    id    int PRIMARY KEY,
    name  text NOT NULL,
    price numeric(10,2) NOT NULL
);

CREATE TABLE public.orders (
    id          serial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES public.customers (id),
    product_id  int,
    total       integer NOT NULL,
    status      varchar(20) NOT NULL DEFAULT 'new',
    note        text
);
CREATE INDEX orders_customer_idx ON public.orders (customer_id);

INSERT INTO public.customers (name, email, plan)
SELECT 'customer ' || i, 'c' || i || '@example.com', CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END
FROM generate_series(1, 20) AS i;

INSERT INTO public.products (id, name, price)
SELECT i, 'product ' || i, i * 2.5 FROM generate_series(1, 10) AS i;

INSERT INTO public.orders (customer_id, product_id, total, status, note)
SELECT 1 + i % 20, CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + i % 10 END, i * 10,
       CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'new' END, CASE WHEN i % 5 = 0 THEN 'note ' || i END
FROM generate_series(1, 200) AS i;

-- airlock's own bookkeeping schema: never part of a report.
CREATE SCHEMA airlock;
CREATE TABLE airlock.changes (id text PRIMARY KEY, status text NOT NULL);
