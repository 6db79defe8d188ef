"""What crediting decided for an event, in words an operator can read back."""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class RewardOutcome(StrEnum):
    """Stored on reward_events.outcome: why a matched member earned what they earned."""

    CREDITED = "credited"
    BELOW_MIN_SPEND = "below_min_spend"
    ZERO_POINTS = "zero_points"
    NO_ACTIVE_RULE = "no_active_rule"
    WALLET_FROZEN = "wallet_frozen"
    USER_SUSPENDED = "user_suspended"


class ProcessingOutcome(StrEnum):
    """Stored on pos_webhook_events_raw.processing_outcome."""

    CREDITED = "credited"
    NOT_CREDITED = "not_credited"  # matched member, no points: see the reward event's outcome
    ANONYMOUS = "anonymous"  # no loyalty member matched; the transaction is kept without points
    DUPLICATE_TRANSACTION = "duplicate_transaction"
    NOT_COMPLETED = "not_completed"
    IGNORED_EVENT_TYPE = "ignored_event_type"
    REVERSED = "reversed"  # a refund took points back (see the reversal's shortfall)
    NOTHING_TO_REVERSE = "nothing_to_reverse"  # the refunded payment earned nothing (more) to take back
    REFUND_WITHOUT_POINTS = "refund_without_points"  # the refunded payment had no member
    DUPLICATE_REFUND = "duplicate_refund"
    ALREADY_PROCESSED = "already_processed"  # a redelivery; never stored


@dataclass(frozen=True, slots=True)
class ProcessingResult:
    raw_event_id: UUID
    outcome: ProcessingOutcome
    transaction_id: UUID | None = None
    points_earned: int = 0
    points_reversed: int = 0
    # Points a refund should have taken back but could not: the member had already spent them.
    points_shortfall: int = 0
