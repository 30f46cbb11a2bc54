"""Graded tests of exercise 06: accounts under Lock/RLock, atomic transfers without deadlock."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import (
    DeadlockError,
    Operation,
    Raises,
    explore_all,
    load_impl,
    scenarios,
    schedules,
)
from pytest_concurrency.testing import Background

bank = load_impl("bank")

# A controlled run of these tests takes a few hundred steps: far more means spinning.
MAX_STEPS = 20_000


def balances(*accounts: Any) -> list:
    return [account.balance for account in accounts]


# -- one thread: the rules ---------------------------------------------------------------------


@pytest.mark.points(1)
def test_a_new_account_has_its_opening_balance():
    assert bank.Account().balance == 0, "Account() must open with a balance of 0"
    assert bank.Account(150).balance == 150, "Account(150) must open with a balance of 150"
    with pytest.raises(ValueError):
        bank.Account(-1)


@pytest.mark.points(1)
def test_deposit_and_withdraw_change_the_balance():
    account = bank.Account(100)
    account.deposit(25)
    assert account.balance == 125, f"100 + deposit(25) gave a balance of {account.balance}"
    account.withdraw(100)
    assert account.balance == 25, f"125 - withdraw(100) gave a balance of {account.balance}"


@pytest.mark.points(2)
def test_withdrawing_more_than_the_balance_raises_and_changes_nothing():
    account = bank.Account(50)
    with pytest.raises(bank.InsufficientFunds):
        account.withdraw(51)
    assert account.balance == 50, f"a refused withdrawal changed the balance to {account.balance}"
    assert issubclass(bank.InsufficientFunds, Exception)
    account.withdraw(50)
    assert account.balance == 0, "withdrawing the whole balance must be allowed"


@pytest.mark.points(1)
@pytest.mark.parametrize("amount", [0, -5])
def test_amounts_that_are_not_positive_are_a_value_error(amount):
    a, b = bank.Account(100), bank.Account(100)
    for what, call in [("deposit", lambda: a.deposit(amount)),
                       ("withdraw", lambda: a.withdraw(amount)),
                       ("transfer", lambda: bank.Bank().transfer(a, b, amount))]:
        with pytest.raises(ValueError):
            call()
        assert balances(a, b) == [100, 100], f"{what}({amount}) changed the balances to {balances(a, b)}"


@pytest.mark.points(2)
def test_transfer_moves_the_money():
    a, b = bank.Account(100), bank.Account(10)
    bank.Bank().transfer(a, b, 30)
    assert balances(a, b) == [70, 40], f"transfer(a=100, b=10, 30) left a, b at {balances(a, b)}"
    bank.Bank().transfer(b, a, 40)
    assert balances(a, b) == [110, 0], f"transfer(b, a, 40) left a, b at {balances(a, b)}"


@pytest.mark.points(2)
def test_a_refused_transfer_changes_nothing():
    a, b = bank.Account(20), bank.Account(5)
    with pytest.raises(bank.InsufficientFunds):
        bank.Bank().transfer(a, b, 21)
    assert balances(a, b) == [20, 5], (
        f"a transfer of 21 from an account holding 20 was refused, but left a, b at {balances(a, b)}: "
        "a transfer is all or nothing"
    )
    with pytest.raises(ValueError):
        bank.Bank().transfer(a, a, 1)


@pytest.mark.points(1)
def test_total_adds_up_the_balances():
    accounts = [bank.Account(n) for n in (5, 10, 20)]
    assert bank.Bank().total(accounts) == 35
    assert bank.Bank().total([]) == 0


# -- threads: the races --------------------------------------------------------------------------


@pytest.mark.hint(2)
@pytest.mark.points(2)
@settings(max_examples=5)
@given(schedules(max_steps=MAX_STEPS))
def test_a_transfer_can_take_a_lock_it_already_holds(schedule):
    a, b = bank.Account(100), bank.Account(0)
    try:
        schedule.run(lambda: bank.Bank().transfer(a, b, 10))
    except DeadlockError as error:
        raise AssertionError(
            "a transfer on its own deadlocked: it holds the account's lock and then calls "
            "withdraw()/deposit(), which take the same lock again. A threading.Lock cannot be "
            f"taken twice by one thread; a threading.RLock can.\n{error}"
        ) from None
    assert balances(a, b) == [90, 10]


@pytest.mark.hint(1)
@pytest.mark.points(3)
def test_no_deposit_is_lost():
    bank.Account(0).deposit(1)  # not written yet: fail here, as "not started"

    def scenario(schedule) -> None:
        account = bank.Account(0)

        def deposit_twice() -> None:
            account.deposit(1)
            account.deposit(1)

        schedule.run(deposit_twice, deposit_twice)
        assert account.balance == 4, (
            f"{4 - account.balance} of 4 deposits were lost: the balance is {account.balance}. "
            "`balance += amount` reads, adds and writes: another thread can run in between"
        )

    # Small enough to try every interleaving with one preemption: no luck involved.
    assert explore_all(scenario, max_preemptions=1).exhausted


@pytest.mark.hint(1)
@pytest.mark.points(3)
def test_concurrent_withdrawals_never_overdraw():
    bank.Account(100).withdraw(1)  # not written yet: fail here, as "not started"

    def scenario(schedule) -> None:
        account = bank.Account(100)

        def withdraw_60() -> str:
            try:
                account.withdraw(60)
            except bank.InsufficientFunds:
                return "refused"
            return "paid"

        outcomes = schedule.run(withdraw_60, withdraw_60)
        assert sorted(outcomes) == ["paid", "refused"] and account.balance == 40, (
            f"two withdrawals of 60 from 100 ended {outcomes} with a balance of {account.balance}: "
            "check the balance and take the money while holding the lock"
        )

    assert explore_all(scenario, max_preemptions=1).exhausted


@pytest.mark.hint(2)
@pytest.mark.points(3)
@given(schedules(max_steps=MAX_STEPS))
def test_opposite_transfers_never_deadlock(schedule):
    a, b = bank.Account(100), bank.Account(100)
    the_bank = bank.Bank()
    try:
        schedule.run(lambda: the_bank.transfer(a, b, 10), lambda: the_bank.transfer(b, a, 20))
    except DeadlockError as error:
        raise AssertionError(
            "transfer(a, b) and transfer(b, a) at the same time deadlocked: each took its "
            "source's lock and waits for the other's. Take the two locks in one global order "
            f"(e.g. by account number), whatever the direction.\n{error}"
        ) from None
    assert balances(a, b) == [110, 90], f"after both transfers a, b are {balances(a, b)}"


@pytest.mark.points(3)
@given(schedules(max_steps=MAX_STEPS))
def test_total_is_a_consistent_snapshot_during_transfers(schedule):
    a, b, c = bank.Account(100), bank.Account(50), bank.Account(0)
    the_bank = bank.Bank()
    seen: list = []

    def audit() -> None:
        for _ in range(2):
            seen.append(the_bank.total([a, b, c]))

    schedule.run(lambda: the_bank.transfer(a, b, 30), lambda: the_bank.transfer(b, c, 40), audit)
    wrong = [total for total in seen if total != 150]
    assert not wrong, (
        f"total() saw {wrong} while money moved between accounts holding 150 in all: a transfer "
        "must hold both accounts' locks from the withdrawal to the deposit, and total() must "
        "hold every account's lock while it adds up"
    )
    assert balances(a, b, c) == [70, 40, 40], f"after the transfers a, b, c are {balances(a, b, c)}"


@pytest.mark.hint(2)
@pytest.mark.points(2)
def test_money_is_conserved_under_many_real_threads():
    accounts = [bank.Account(1000) for _ in range(4)]
    the_bank = bank.Bank()

    def shuffle_money(seed: int) -> int:
        rng = random.Random(seed)
        refused = 0
        for _ in range(300):
            src, dst = rng.sample(accounts, 2)
            try:
                the_bank.transfer(src, dst, rng.randint(1, 300))
            except bank.InsufficientFunds:
                refused += 1
        return refused

    jobs = [Background(shuffle_money, seed, name=f"teller-{seed}") for seed in range(4)]
    for job in jobs:
        job.outcome("4 threads making 300 random transfers each among 4 accounts")
    total = sum(balances(*accounts))
    assert total == 4000, f"4000 went in, {total} came out after the transfers: {balances(*accounts)}"
    negative = [x for x in balances(*accounts) if x < 0]
    assert not negative, f"an account went below zero: {balances(*accounts)}"


# -- linearizability: every call from several threads at once ------------------------------------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after part)
# on two accounts, each runs under a drawn schedule, and every result must be explained
# by some sequential order of the calls: the order a bank with one teller would give.
OPENING = (50, 20)
AMOUNTS = st.sampled_from([10, 30, 60])
WHICH = st.sampled_from([0, 1])


class Branch:
    """The structure under test: a bank and its two accounts."""

    def __init__(self) -> None:
        self.bank = bank.Bank()
        self.accounts = [bank.Account(balance) for balance in OPENING]


def bank_model(balances: tuple, name: str, *args: Any) -> Any:
    """One teller: ``(result, new_balances)``."""
    if name == "total":
        return sum(balances), balances
    if name == "balance":
        return balances[args[0]], balances
    if name == "balances":
        return balances, balances
    changed = list(balances)
    if name == "deposit":
        changed[args[0]] += args[1]
        return None, tuple(changed)
    src, amount = args
    dst = None if name == "withdraw" else 1 - src  # a transfer goes to the other account
    if amount > balances[src]:
        return Raises(bank.InsufficientFunds), balances
    changed[src] -= amount
    if dst is not None:
        changed[dst] += amount
    return None, tuple(changed)


BANK_OPERATIONS = [
    Operation("deposit", lambda b, i, amount: b.accounts[i].deposit(amount), WHICH, AMOUNTS),
    Operation("withdraw", lambda b, i, amount: b.accounts[i].withdraw(amount), WHICH, AMOUNTS),
    Operation("transfer", lambda b, i, amount: b.bank.transfer(b.accounts[i], b.accounts[1 - i], amount), WHICH, AMOUNTS),
    Operation("total", lambda b: b.bank.total(b.accounts)),
    Operation("balance", lambda b, i: b.accounts[i].balance, WHICH),
]
BALANCES = Operation("balances", lambda b: tuple(account.balance for account in b.accounts))


MONEY_IN_AND_OUT = [op for op in BANK_OPERATIONS if op.name in ("deposit", "withdraw", "balance")]
MONEY_MOVED = [op for op in BANK_OPERATIONS if op.name in ("transfer", "total")]
whole_runs = settings(max_examples=300, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])


@pytest.mark.points(2)
@whole_runs
@given(scenarios(MONEY_IN_AND_OUT, setup=(), after=(), final=[BALANCES]), schedules(max_steps=MAX_STEPS))
def test_deposits_and_withdrawals_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, Branch, bank_model, initial=OPENING, name="the bank")


@pytest.mark.points(3)
@whole_runs
@given(scenarios(MONEY_MOVED, setup=(), after=(), final=[BALANCES]), schedules(max_steps=MAX_STEPS))
def test_transfers_and_totals_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, Branch, bank_model, initial=OPENING, name="the bank")
