-- Keys, foreign keys and indexes, built after the load (see schema.sql).
-- Each index names the query that needs it.

ALTER TABLE users       ADD PRIMARY KEY (id);
ALTER TABLE products    ADD PRIMARY KEY (id);
ALTER TABLE orders      ADD PRIMARY KEY (id);
ALTER TABLE order_items ADD PRIMARY KEY (order_id, line_no); -- an order's items, in line order
ALTER TABLE posts       ADD PRIMARY KEY (id);
ALTER TABLE comments    ADD PRIMARY KEY (id);

ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE orders      ADD FOREIGN KEY (user_id)    REFERENCES users (id);
ALTER TABLE order_items ADD FOREIGN KEY (order_id)   REFERENCES orders (id);
ALTER TABLE order_items ADD FOREIGN KEY (product_id) REFERENCES products (id);
ALTER TABLE posts       ADD FOREIGN KEY (author_id)  REFERENCES users (id);
ALTER TABLE comments    ADD FOREIGN KEY (post_id)    REFERENCES posts (id);
ALTER TABLE comments    ADD FOREIGN KEY (author_id)  REFERENCES users (id);

-- A user's orders, newest first (lesson 1; lesson 2 pages over it).
CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at DESC, id DESC);

-- The feed: the latest posts (lesson 1).
CREATE INDEX posts_created_at_idx ON posts (created_at DESC, id DESC);

-- Comments of a post (lesson 1: the feed's comment counts).
CREATE INDEX comments_post_id_idx ON comments (post_id);


ALTER TABLE payments       ADD PRIMARY KEY (id);
ALTER TABLE payment_outbox ADD PRIMARY KEY (id);
ALTER TABLE payments       ADD FOREIGN KEY (user_id)    REFERENCES users (id);
ALTER TABLE payment_outbox ADD FOREIGN KEY (payment_id) REFERENCES payments (id);

-- One payment per user and idempotency key (lessons 9–10): of two inserts with
-- one key, the second finds the first's row. A key is one user's name for a
-- payment, so two users' keys never meet. NULL keys (lesson 8) are all
-- distinct.
ALTER TABLE payments ADD CONSTRAINT payments_user_id_idempotency_key_key UNIQUE (user_id, idempotency_key);

-- The relay's next batch: unsent payments in queue order (lesson 10).
CREATE INDEX payment_outbox_unsent_idx ON payment_outbox (id) WHERE sent_at IS NULL;
