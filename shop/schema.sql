-- The shop's tables, created empty before the load. Keys, foreign keys and
-- indexes live in indexes.sql and are built after the rows are in: building
-- an index once over loaded rows is far cheaper than maintaining it row by row.

CREATE TABLE users (
    id         bigint      NOT NULL,
    name       text        NOT NULL,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE products (
    id          bigint NOT NULL,
    name        text   NOT NULL,
    category    text   NOT NULL,
    price_cents bigint NOT NULL
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
