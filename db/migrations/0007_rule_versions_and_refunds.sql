-- Rule versions in force by time, and refunds reversed through the ledger (seeds 001, 002).

-- A version applies to transactions from its effective_from on, once it has been activated;
-- is_active marks the current version (redemptions and new rules read it).
ALTER TABLE loyalty.reward_rules ADD COLUMN activated_at timestamptz;
UPDATE loyalty.reward_rules SET activated_at = created_at WHERE is_active;
ALTER TABLE loyalty.reward_rules
    ADD CONSTRAINT reward_rules_active_was_activated CHECK (NOT is_active OR activated_at IS NOT NULL);
CREATE INDEX reward_rules_in_force_idx
    ON loyalty.reward_rules (tenant_id, effective_from DESC, version DESC) WHERE activated_at IS NOT NULL;

CREATE TABLE pos.refunds (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES identity.tenants (id),
    transaction_id     uuid NOT NULL REFERENCES pos.transactions (id),
    provider           text NOT NULL CHECK (provider IN ('square', 'clover')),
    provider_refund_id text NOT NULL CHECK (length(provider_refund_id) > 0),
    amount_minor_units bigint NOT NULL CHECK (amount_minor_units > 0),
    currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    refunded_at        timestamptz NOT NULL,
    raw_event_id       uuid REFERENCES pos.pos_webhook_events_raw (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_provider_refund_key UNIQUE (tenant_id, provider, provider_refund_id)
);
CREATE INDEX refunds_transaction_idx ON pos.refunds (transaction_id);
CREATE INDEX refunds_raw_event_idx ON pos.refunds (raw_event_id);
CREATE TRIGGER refunds_touch BEFORE UPDATE ON pos.refunds
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
ALTER TABLE pos.refunds ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pos.refunds
    USING (tenant_id = app.current_tenant_id())
    WITH CHECK (tenant_id = app.current_tenant_id());

-- A reversal records what it took back and what it could not (already spent): the shortfall.
ALTER TABLE loyalty.reward_events
    ADD COLUMN refund_id        uuid REFERENCES pos.refunds (id),
    ADD COLUMN points_reversed  integer NOT NULL DEFAULT 0 CHECK (points_reversed >= 0),
    ADD COLUMN points_shortfall integer NOT NULL DEFAULT 0 CHECK (points_shortfall >= 0),
    ADD CONSTRAINT reward_events_reversal_has_refund CHECK ((kind = 'reversal') = (refund_id IS NOT NULL));
ALTER TABLE loyalty.reward_events DROP CONSTRAINT reward_events_outcome_check;
ALTER TABLE loyalty.reward_events ADD CONSTRAINT reward_events_outcome_check CHECK (outcome IN (
    'credited', 'below_min_spend', 'zero_points', 'no_active_rule', 'wallet_frozen', 'user_suspended',
    'redeemed', 'reversed', 'nothing_to_reverse'));
-- A refund is reversed at most once (only reversals have a refund_id).
CREATE UNIQUE INDEX reward_events_one_reversal_per_refund ON loyalty.reward_events (refund_id);

GRANT SELECT, INSERT ON pos.refunds TO pos_gateway_crediting;
GRANT SELECT ON pos.refunds TO pos_gateway_admin;
-- FOR UPDATE needs an UPDATE grant: crediting locks a wallet to cap a reversal at its balance,
-- and a transaction to serialize the refunds of one payment.
GRANT UPDATE (updated_at) ON loyalty.wallets, pos.transactions TO pos_gateway_crediting;
