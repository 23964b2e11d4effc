-- The shop's tables, created empty before the load. Keys, foreign keys and
-- indexes live in indexes.sql and are built after the rows are in: building
-- an index once over loaded rows is far cheaper than maintaining it row by row.

-- phone is NULL for a user who gave no number (every fifth user, by id).
CREATE TABLE users (
    id         bigint      NOT NULL,
    name       text        NOT NULL,
    email      text        NOT NULL,
    phone      text,
    created_at timestamptz NOT NULL
);

-- stock is the units left to sell (lesson 12), none until some are counted in;
-- version counts the writes to the row, for a writer that checks nobody wrote
-- since it read.
CREATE TABLE products (
    id          bigint  NOT NULL,
    name        text    NOT NULL,
    category    text    NOT NULL,
    price_cents bigint  NOT NULL,
    stock       integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
    version     bigint  NOT NULL DEFAULT 0
);

CREATE TABLE orders (
    id         bigint      NOT NULL,
    user_id    bigint      NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- One row per line of an order; price_cents is the price paid, copied from
-- the product when the order was placed.
CREATE TABLE order_items (
    order_id    bigint  NOT NULL,
    line_no     integer NOT NULL,
    product_id  bigint  NOT NULL,
    quantity    integer NOT NULL,
    price_cents bigint  NOT NULL
);

CREATE TABLE posts (
    id         bigint      NOT NULL,
    author_id  bigint      NOT NULL,
    title      text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE comments (
    id         bigint      NOT NULL,
    post_id    bigint      NOT NULL,
    author_id  bigint      NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- Payments (lessons 8–10), empty until a lesson takes one. idempotency_key is
-- the client's name for a payment, unique per user: a retried request carries
-- the same key, so the retry finds the first attempt's row instead of paying
-- twice. status is pending (the charge is being made), charged, failed,
-- unknown (the gateway may have charged: reconciled by key) or queued (lesson
-- 10). A pending payment is leased (lesson 9): lease_owner makes the charge
-- until lease_expires_at; after it, another call may take the payment over.
CREATE TABLE payments (
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    user_id         bigint      NOT NULL,
    amount_cents    bigint      NOT NULL,
    currency        text        NOT NULL,
    idempotency_key text,
    reference       text,                               -- what is paid for, e.g. order-42
    status          text        NOT NULL DEFAULT 'pending',
    charge_id       text,
    lease_owner     text,
    lease_expires_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Payments to send to the gateway when it is back (lesson 10): written in the
-- same transaction as the payment, sent and marked by a relay.
CREATE TABLE payment_outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    payment_id bigint      NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
