-- Wallets, the append-only ledger, versioned reward rules and reward events (seeds 001 and 002).

CREATE TABLE loyalty.reward_rules (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES identity.tenants (id),
    version        integer NOT NULL CHECK (version > 0),
    is_active      boolean NOT NULL DEFAULT true,
    rule_config    jsonb NOT NULL CHECK (jsonb_typeof(rule_config) = 'object'),
    effective_from timestamptz NOT NULL DEFAULT now(),
    created_by     uuid REFERENCES identity.users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reward_rules_tenant_version_key UNIQUE (tenant_id, version)
);
-- One active rule per tenant.
CREATE UNIQUE INDEX reward_rules_one_active_per_tenant
    ON loyalty.reward_rules (tenant_id) WHERE is_active;
CREATE INDEX reward_rules_created_by_idx ON loyalty.reward_rules (created_by);

-- version increments per tenant; the unique key settles concurrent inserts.
CREATE FUNCTION loyalty.assign_rule_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.version IS NULL THEN
        SELECT coalesce(max(version), 0) + 1 INTO NEW.version
          FROM loyalty.reward_rules WHERE tenant_id = NEW.tenant_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER reward_rules_version BEFORE INSERT ON loyalty.reward_rules
    FOR EACH ROW EXECUTE FUNCTION loyalty.assign_rule_version();
CREATE TRIGGER reward_rules_touch BEFORE UPDATE ON loyalty.reward_rules
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE loyalty.wallets (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES identity.tenants (id),
    user_id        uuid NOT NULL REFERENCES identity.users (id),
    -- Snapshot of the ledger sum, maintained only by loyalty.apply_ledger_entry().
    points_balance integer NOT NULL DEFAULT 0,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen')),
    version        integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_points_balance_non_negative CHECK (points_balance >= 0),
    CONSTRAINT wallets_tenant_user_key UNIQUE (tenant_id, user_id),
    -- Lets ledger rows reference (tenant, wallet) so a row can never cross tenants.
    CONSTRAINT wallets_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX wallets_user_idx ON loyalty.wallets (user_id);
CREATE TRIGGER wallets_touch BEFORE UPDATE ON loyalty.wallets
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE loyalty.reward_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL,
    wallet_id       uuid NOT NULL,
    transaction_id  uuid REFERENCES pos.transactions (id),
    rule_version_id uuid REFERENCES loyalty.reward_rules (id),
    kind            text NOT NULL CHECK (kind IN ('earn', 'redeem', 'reversal')),
    -- Why the event earned what it did: nothing is skipped silently.
    outcome         text NOT NULL CHECK (outcome IN (
                        'credited', 'below_min_spend', 'zero_points', 'no_active_rule',
                        'wallet_frozen', 'user_suspended', 'redeemed', 'reversed')),
    points_earned   integer NOT NULL DEFAULT 0 CHECK (points_earned >= 0),
    points_redeemed integer NOT NULL DEFAULT 0 CHECK (points_redeemed >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, wallet_id) REFERENCES loyalty.wallets (tenant_id, id)
);
-- A transaction earns at most once.
CREATE UNIQUE INDEX reward_events_one_earn_per_transaction
    ON loyalty.reward_events (transaction_id) WHERE kind = 'earn';
CREATE INDEX reward_events_wallet_idx ON loyalty.reward_events (tenant_id, wallet_id, created_at);
CREATE INDEX reward_events_tenant_time_idx ON loyalty.reward_events (tenant_id, created_at);
CREATE INDEX reward_events_transaction_idx ON loyalty.reward_events (transaction_id);
CREATE INDEX reward_events_rule_idx ON loyalty.reward_events (rule_version_id);

CREATE TABLE loyalty.wallet_ledger (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             uuid NOT NULL,
    wallet_id             uuid NOT NULL,
    entry_type            text NOT NULL CHECK (entry_type IN ('credit', 'debit')),
    points                integer NOT NULL CHECK (points > 0),
    -- Wallet balance right after this entry, filled in by the trigger.
    balance_after         integer NOT NULL DEFAULT 0,
    description           text,
    source_transaction_id uuid REFERENCES pos.transactions (id),
    reward_event_id       uuid REFERENCES loyalty.reward_events (id),
    created_by_admin      uuid REFERENCES identity.users (id),
    created_at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, wallet_id) REFERENCES loyalty.wallets (tenant_id, id)
);
-- A provider transaction is credited at most once, whatever path it arrives by.
CREATE UNIQUE INDEX wallet_ledger_one_credit_per_transaction
    ON loyalty.wallet_ledger (source_transaction_id) WHERE entry_type = 'credit';
CREATE INDEX wallet_ledger_wallet_time_idx ON loyalty.wallet_ledger (tenant_id, wallet_id, created_at, id);
CREATE INDEX wallet_ledger_tenant_idx ON loyalty.wallet_ledger (tenant_id);
CREATE INDEX wallet_ledger_source_transaction_idx ON loyalty.wallet_ledger (source_transaction_id);
CREATE INDEX wallet_ledger_reward_event_idx ON loyalty.wallet_ledger (reward_event_id);
CREATE INDEX wallet_ledger_created_by_admin_idx ON loyalty.wallet_ledger (created_by_admin);

-- Every ledger entry moves the wallet balance in the same statement, under the wallet's row
-- lock: the balance equals the ledger sum at every commit, concurrent entries never lose an
-- update, and a debit past zero fails on wallets_points_balance_non_negative.
CREATE FUNCTION loyalty.apply_ledger_entry() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    UPDATE loyalty.wallets
       SET points_balance = points_balance
                            + CASE NEW.entry_type WHEN 'credit' THEN NEW.points ELSE -NEW.points END,
           version = version + 1
     WHERE id = NEW.wallet_id AND tenant_id = NEW.tenant_id
    RETURNING points_balance INTO NEW.balance_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet % not found in tenant %', NEW.wallet_id, NEW.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION loyalty.apply_ledger_entry() FROM PUBLIC;
CREATE TRIGGER wallet_ledger_apply BEFORE INSERT ON loyalty.wallet_ledger
    FOR EACH ROW EXECUTE FUNCTION loyalty.apply_ledger_entry();

CREATE TRIGGER wallet_ledger_append_only BEFORE UPDATE OR DELETE ON loyalty.wallet_ledger
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER wallet_ledger_no_truncate BEFORE TRUNCATE ON loyalty.wallet_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER reward_events_append_only BEFORE UPDATE OR DELETE ON loyalty.reward_events
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER reward_events_no_truncate BEFORE TRUNCATE ON loyalty.reward_events
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();
