"""Run the recall auditor now: recall@10 of what search serves vs exact ranking, per space
and plan class (search.operations.audit); stored like the periodic runs, shown on /dashboard/."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from search.models import EmbeddingSpace
from search.operations import audit


class Command(BaseCommand):
    help = "Measure recall@10 of the planner against exact ranking (per space and plan class)."

    def add_arguments(self, parser):
        parser.add_argument("--samples", type=int, default=None,
                            help="papers sampled per space (each asks up to 5 filter shapes)")
        parser.add_argument("--budget", type=float, default=None, help="seconds per space")
        parser.add_argument("--space", action="append", default=[],
                            help="a space name (repeatable); default: the audited active spaces")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, samples, budget, space, seed, **options):
        spaces = None
        if space:
            spaces = list(EmbeddingSpace.objects.filter(name__in=space))
            if len(spaces) != len(set(space)):
                raise CommandError(f"unknown space among {space}")
        try:
            run = audit.recall_audit(spaces=spaces, samples=samples, budget_seconds=budget,
                                     seed=seed)
        except audit.AuditBusy as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"recall audit #{run.pk}: {run.queries} queries in {run.seconds} s "
                          f"(target {run.target})")
        self.stdout.write(f"  {'space':<40} {'class':<16} {'recall@10':>9} {'min':>6} "
                          f"{'n':>4} {'p50 ms':>7} {'p95 ms':>7}")
        for m in run.measurements.select_related("space").order_by("space_id", "plan_class"):
            flag = "  BELOW TARGET" if m.below_target else ""
            self.stdout.write(f"  {m.space.name:<40} {m.plan_class:<16} {m.recall_at_10:>9.3f} "
                              f"{m.recall_min:>6.2f} {m.queries:>4} {m.latency_p50_ms:>7.2f} "
                              f"{m.latency_p95_ms:>7.2f}{flag}")
