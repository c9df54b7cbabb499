//! The run's scheduler as a pure state machine: it knows the stage graph, which stages use the
//! device and how many CPU stages may run at once, and decides what happens next from the
//! events it is fed. No threads, no I/O, no clock — so its orderings, limits and failure rules
//! are unit-tested in milliseconds, and `exec::run` only carries its decisions out.
//!
//! A stage goes `Pending` → (all inputs ended) → `Settling` (the driver fingerprints it and
//! asks the cache) → `Queued` → `Running` → `Ended`, or ends straight from `Pending` when an
//! input gave no result, or from `Settling` when it is cached, would run, or cannot be planned.

use std::collections::{BTreeSet, VecDeque};

/// A stage as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The stages whose results it reads, in the order its inputs are declared (a stage read
    /// twice, e.g. two splits, appears twice).
    pub upstream: Vec<usize>,
    /// It runs on the device queue, one device stage at a time.
    pub uses_device: bool,
    /// Part of this run (`--target`); a stage that is not ends `NotSelected` at once.
    pub selected: bool,
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Its result was in the cache.
    Cached,
    Ran,
    /// It ran and failed, or could not be planned.
    Failed,
    /// Not run: this input (a stage index) has no result.
    Skipped {
        input: usize,
    },
    Cancelled,
    /// `--dry-run`: it would run, because of its own state (`after: None`) or because this
    /// input would run first.
    WouldRun {
        after: Option<usize>,
    },
    NotSelected,
}

impl End {
    /// Whether the stage has a result its consumers can read.
    pub fn has_result(self) -> bool {
        matches!(self, End::Cached | End::Ran)
    }
}

/// A stage whose inputs all have results, to be fingerprinted and looked up by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub stage: usize,
    /// A consumer found its cached output corrupt: it must run, whatever the cache says.
    pub recompute: bool,
}

/// What the driver decided for a stage it settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Cached,
    /// Queue it.
    Run,
    /// `--dry-run`: it would run.
    WouldRun,
    /// Its fingerprint could not be computed.
    Failed,
}

/// How a running stage came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Ran,
    Failed,
    Cancelled,
    /// An object of this upstream stage failed its digest check as the stage read it.
    UpstreamDamaged {
        upstream: usize,
    },
}

/// What became of a stage that came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Ended(End),
    /// Its upstream stage runs again (the first time that stage was found damaged), then it.
    Requeued,
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Every stage has ended.
    Done,
    /// Stages are running or can move on: feed the next event.
    Busy,
    /// Nothing runs and nothing can start, yet stages have not ended (a cycle or a driver bug).
    Stalled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    Settling,
    Queued,
    Running,
    Ended(End),
}

pub struct Scheduler {
    nodes: Vec<Node>,
    /// The order in which ready stages are settled (topological, so each settles once a round).
    order: Vec<usize>,
    jobs: usize,
    slots: Vec<Slot>,
    cpu_queue: VecDeque<usize>,
    device_queue: VecDeque<usize>,
    cpu_running: usize,
    device_running: bool,
    /// Stages recomputed because a consumer found them damaged: once each.
    recomputed: BTreeSet<usize>,
    cancelled: bool,
}

impl Scheduler {
    /// `order` lists every stage, inputs before consumers; at most `jobs` CPU stages run at once
    /// (at least one).
    pub fn new(nodes: Vec<Node>, order: Vec<usize>, jobs: usize) -> Scheduler {
        let slots = nodes
            .iter()
            .map(|n| {
                if n.selected {
                    Slot::Pending
                } else {
                    Slot::Ended(End::NotSelected)
                }
            })
            .collect();
        Scheduler {
            nodes,
            order,
            jobs: jobs.max(1),
            slots,
            cpu_queue: VecDeque::new(),
            device_queue: VecDeque::new(),
            cpu_running: 0,
            device_running: false,
            recomputed: BTreeSet::new(),
            cancelled: false,
        }
    }

    /// The next stage to settle, in `order`. Stages whose inputs cannot give them a result end
    /// on the way (skipped, cancelled, would run), without being asked about.
    pub fn next_to_settle(&mut self) -> Option<Ready> {
        for k in 0..self.order.len() {
            let i = self.order[k];
            if self.slots[i] != Slot::Pending || !self.inputs_ended(i) {
                continue;
            }
            if let Some(end) = self.end_without_settling(i) {
                self.slots[i] = Slot::Ended(end);
                continue;
            }
            self.slots[i] = Slot::Settling;
            let recompute = self.recomputed.contains(&i);
            return Some(Ready {
                stage: i,
                recompute,
            });
        }
        None
    }

    /// Records what settling decided for a stage [`Self::next_to_settle`] handed out.
    pub fn settled(&mut self, stage: usize, settlement: Settlement) {
        assert_eq!(
            self.slots[stage],
            Slot::Settling,
            "stage {stage} settled twice"
        );
        self.slots[stage] = match settlement {
            Settlement::Cached => Slot::Ended(End::Cached),
            Settlement::WouldRun => Slot::Ended(End::WouldRun { after: None }),
            Settlement::Failed => Slot::Ended(End::Failed),
            Settlement::Run if self.nodes[stage].uses_device => {
                self.device_queue.push_back(stage);
                Slot::Queued
            }
            Settlement::Run => {
                self.cpu_queue.push_back(stage);
                Slot::Queued
            }
        };
    }

    /// The queued stages that may start now, CPU stages first: as many as free CPU slots, and
    /// one device stage when the device is idle. Nothing once cancelled.
    pub fn launch(&mut self) -> Vec<usize> {
        let mut launch = Vec::new();
        if self.cancelled {
            return launch;
        }
        while self.cpu_running < self.jobs {
            let Some(i) = self.cpu_queue.pop_front() else {
                break;
            };
            self.cpu_running += 1;
            launch.push(i);
        }
        if !self.device_running
            && let Some(i) = self.device_queue.pop_front()
        {
            self.device_running = true;
            launch.push(i);
        }
        for &i in &launch {
            self.slots[i] = Slot::Running;
        }
        launch
    }

    /// Records how a launched stage came back and frees its slot.
    pub fn finished(&mut self, stage: usize, finish: Finish) -> Landing {
        assert_eq!(
            self.slots[stage],
            Slot::Running,
            "stage {stage} was not running"
        );
        if self.nodes[stage].uses_device {
            self.device_running = false;
        } else {
            self.cpu_running -= 1;
        }
        let end = match finish {
            Finish::Ran => End::Ran,
            Finish::Failed => End::Failed,
            Finish::Cancelled => End::Cancelled,
            Finish::UpstreamDamaged { upstream } => {
                if self.requeue(stage, upstream) {
                    return Landing::Requeued;
                }
                End::Failed
            }
        };
        self.slots[stage] = Slot::Ended(end);
        Landing::Ended(end)
    }

    /// Stops the run: nothing starts any more, queued stages end cancelled (returned), running
    /// ones finish, stages still waiting end cancelled as their inputs end.
    pub fn cancel(&mut self) -> Vec<usize> {
        self.cancelled = true;
        let dropped: Vec<usize> = self
            .cpu_queue
            .drain(..)
            .chain(self.device_queue.drain(..))
            .collect();
        for &i in &dropped {
            self.slots[i] = Slot::Ended(End::Cancelled);
        }
        dropped
    }

    pub fn poll(&self) -> Poll {
        if self.slots.iter().all(|s| matches!(s, Slot::Ended(_))) {
            return Poll::Done;
        }
        let moving = self.cpu_running > 0
            || self.device_running
            || !self.cpu_queue.is_empty()
            || !self.device_queue.is_empty()
            || self.slots.contains(&Slot::Settling)
            || (0..self.slots.len())
                .any(|i| self.slots[i] == Slot::Pending && self.inputs_ended(i));
        if moving { Poll::Busy } else { Poll::Stalled }
    }

    /// How the stage ended; `None` while it has not.
    pub fn end(&self, stage: usize) -> Option<End> {
        match self.slots[stage] {
            Slot::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// Stages that have not ended (named in a stall).
    pub fn unfinished(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.end(i).is_none())
            .collect()
    }

    fn inputs_ended(&self, i: usize) -> bool {
        self.nodes[i]
            .upstream
            .iter()
            .all(|&u| matches!(self.slots[u], Slot::Ended(_)))
    }

    /// The end of a stage whose inputs have all ended, when it needs no settling: the first
    /// input (in declared order) without a result decides.
    fn end_without_settling(&self, i: usize) -> Option<End> {
        if self.cancelled {
            return Some(End::Cancelled);
        }
        self.nodes[i]
            .upstream
            .iter()
            .find_map(|&u| match self.end(u).expect("input ended") {
                end if end.has_result() => None,
                End::WouldRun { .. } => Some(End::WouldRun { after: Some(u) }),
                End::Cancelled => Some(End::Cancelled),
                _ => Some(End::Skipped { input: u }),
            })
    }

    /// Sends a damaged upstream stage and its consumer back to settle again, unless that stage
    /// was recomputed already (then the consumer fails).
    fn requeue(&mut self, consumer: usize, upstream: usize) -> bool {
        let has_result = self.end(upstream).is_some_and(End::has_result);
        if !has_result || !self.recomputed.insert(upstream) {
            return false;
        }
        self.slots[upstream] = Slot::Pending;
        self.slots[consumer] = Slot::Pending;
        // Queued consumers would read what is being recomputed: they settle again after it.
        let (nodes, slots) = (&self.nodes, &mut self.slots);
        for queue in [&mut self.cpu_queue, &mut self.device_queue] {
            queue.retain(|&j| {
                let reads = nodes[j].upstream.contains(&upstream);
                if reads {
                    slots[j] = Slot::Pending;
                }
                !reads
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(upstream: &[usize], uses_device: bool) -> Node {
        Node {
            upstream: upstream.to_vec(),
            uses_device,
            selected: true,
        }
    }

    fn scheduler(nodes: Vec<Node>, jobs: usize) -> Scheduler {
        let order = (0..nodes.len()).collect();
        Scheduler::new(nodes, order, jobs)
    }

    /// Settles every ready stage with `decide`; returns the stages settled, in order.
    fn settle_all(s: &mut Scheduler, decide: impl Fn(usize) -> Settlement) -> Vec<usize> {
        let mut settled = Vec::new();
        while let Some(ready) = s.next_to_settle() {
            s.settled(ready.stage, decide(ready.stage));
            settled.push(ready.stage);
        }
        settled
    }

    fn run_all(_: usize) -> Settlement {
        Settlement::Run
    }

    #[test]
    fn stages_settle_and_start_in_topological_order() {
        // 0 → 1 → 3, 0 → 2 → 3
        let mut s = scheduler(
            vec![
                node(&[], false),
                node(&[0], false),
                node(&[0], false),
                node(&[1, 2], false),
            ],
            4,
        );
        assert_eq!(settle_all(&mut s, run_all), vec![0]);
        assert_eq!(s.launch(), vec![0]);
        assert_eq!(settle_all(&mut s, run_all), Vec::<usize>::new());
        assert_eq!(s.finished(0, Finish::Ran), Landing::Ended(End::Ran));
        assert_eq!(settle_all(&mut s, run_all), vec![1, 2]);
        assert_eq!(s.launch(), vec![1, 2]);
        s.finished(2, Finish::Ran);
        assert_eq!(
            settle_all(&mut s, run_all),
            Vec::<usize>::new(),
            "3 waits for 1"
        );
        s.finished(1, Finish::Ran);
        assert_eq!(settle_all(&mut s, run_all), vec![3]);
        assert_eq!(s.launch(), vec![3]);
        assert_eq!(s.poll(), Poll::Busy);
        s.finished(3, Finish::Ran);
        assert_eq!(s.poll(), Poll::Done);
    }

    #[test]
    fn cached_stages_end_while_settling_and_their_consumers_follow_at_once() {
        let mut s = scheduler(vec![node(&[], false), node(&[0], false)], 1);
        assert_eq!(settle_all(&mut s, |_| Settlement::Cached), vec![0, 1]);
        assert!(s.launch().is_empty());
        assert_eq!(s.poll(), Poll::Done);
        assert_eq!(s.end(1), Some(End::Cached));
    }

    #[test]
    fn device_stages_run_one_at_a_time_even_when_many_are_ready() {
        let mut nodes = vec![node(&[], false)];
        nodes.extend((0..5).map(|_| node(&[0], true)));
        nodes.push(node(&[0], false));
        let mut s = scheduler(nodes, 8);
        settle_all(&mut s, run_all);
        s.launch();
        s.finished(0, Finish::Ran);
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![6, 1], "the CPU stage and one device stage");
        for next in 2..=5 {
            assert!(s.launch().is_empty(), "the device is busy");
            s.finished(next - 1, Finish::Ran);
            assert_eq!(s.launch(), vec![next]);
        }
    }

    #[test]
    fn at_most_jobs_cpu_stages_run_at_once() {
        let mut s = scheduler((0..5).map(|_| node(&[], false)).collect(), 2);
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![0, 1]);
        assert!(s.launch().is_empty());
        s.finished(1, Finish::Ran);
        assert_eq!(s.launch(), vec![2]);
        s.finished(0, Finish::Failed);
        s.finished(2, Finish::Ran);
        assert_eq!(s.launch(), vec![3, 4]);
    }

    #[test]
    fn zero_jobs_still_runs_one_cpu_stage() {
        let mut s = scheduler(vec![node(&[], false), node(&[], false)], 0);
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![0]);
    }

    #[test]
    fn a_failed_stage_skips_its_dependents_while_an_independent_branch_runs() {
        // 0 → 1 → 2 ; 3 → 4
        let mut s = scheduler(
            vec![
                node(&[], false),
                node(&[0], false),
                node(&[1], false),
                node(&[], false),
                node(&[3], false),
            ],
            1,
        );
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![0]);
        s.finished(0, Finish::Failed);
        settle_all(&mut s, run_all);
        assert_eq!(s.end(1), Some(End::Skipped { input: 0 }));
        assert_eq!(s.end(2), Some(End::Skipped { input: 1 }));
        assert_eq!(s.launch(), vec![3]);
        s.finished(3, Finish::Ran);
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![4]);
        s.finished(4, Finish::Ran);
        assert_eq!(s.poll(), Poll::Done);
        assert_eq!(s.end(4), Some(End::Ran));
    }

    #[test]
    fn the_first_input_without_a_result_decides_a_skip() {
        let mut s = scheduler(
            vec![node(&[], false), node(&[], false), node(&[0, 1], false)],
            2,
        );
        settle_all(&mut s, |i| {
            if i == 0 {
                Settlement::Cached
            } else {
                Settlement::Failed
            }
        });
        assert_eq!(s.end(2), Some(End::Skipped { input: 1 }));
    }

    #[test]
    fn cancelling_ends_queued_stages_lets_running_ones_finish_and_starts_nothing() {
        // 0, 1 run; 2 queued; 3 waits for 0.
        let mut s = scheduler(
            vec![
                node(&[], false),
                node(&[], false),
                node(&[], false),
                node(&[0], false),
            ],
            2,
        );
        settle_all(&mut s, run_all);
        assert_eq!(s.launch(), vec![0, 1]);
        assert_eq!(s.cancel(), vec![2]);
        assert_eq!(s.end(2), Some(End::Cancelled));
        assert!(s.launch().is_empty());
        assert_eq!(s.poll(), Poll::Busy);
        s.finished(0, Finish::Ran);
        s.finished(1, Finish::Cancelled);
        assert_eq!(settle_all(&mut s, run_all), Vec::<usize>::new());
        assert!(s.launch().is_empty());
        assert_eq!(s.end(0), Some(End::Ran), "a running stage finishes");
        assert_eq!(
            s.end(3),
            Some(End::Cancelled),
            "a waiting one never settles"
        );
        assert_eq!(s.poll(), Poll::Done);
    }

    #[test]
    fn upstream_damage_recomputes_the_owner_once_then_the_consumer() {
        let mut s = scheduler(vec![node(&[], false), node(&[0], false)], 1);
        settle_all(&mut s, |i| {
            if i == 0 {
                Settlement::Cached
            } else {
                Settlement::Run
            }
        });
        assert_eq!(s.launch(), vec![1]);
        let damaged = Finish::UpstreamDamaged { upstream: 0 };
        assert_eq!(s.finished(1, damaged), Landing::Requeued);
        assert_eq!(s.end(0), None, "the owner settles again");
        let ready = s.next_to_settle().expect("the owner is ready");
        assert_eq!(
            ready,
            Ready {
                stage: 0,
                recompute: true
            }
        );
        s.settled(0, Settlement::Run);
        assert_eq!(s.next_to_settle(), None, "the consumer waits for it");
        assert_eq!(s.launch(), vec![0]);
        s.finished(0, Finish::Ran);
        assert_eq!(s.next_to_settle().map(|r| r.stage), Some(1));
        s.settled(1, Settlement::Run);
        assert_eq!(s.launch(), vec![1]);
        assert_eq!(
            s.finished(1, damaged),
            Landing::Ended(End::Failed),
            "twice fails"
        );
        assert_eq!(s.poll(), Poll::Done);
    }

    #[test]
    fn a_queued_consumer_of_a_stage_sent_back_to_recompute_waits_for_it_again() {
        // 0 → 1, 0 → 2 ; one CPU slot, so 2 is queued while 1 runs.
        let mut s = scheduler(
            vec![node(&[], false), node(&[0], false), node(&[0], false)],
            1,
        );
        settle_all(&mut s, |i| {
            if i == 0 {
                Settlement::Cached
            } else {
                Settlement::Run
            }
        });
        assert_eq!(s.launch(), vec![1]);
        let damaged = Finish::UpstreamDamaged { upstream: 0 };
        assert_eq!(s.finished(1, damaged), Landing::Requeued);
        assert_eq!(
            s.launch(),
            Vec::<usize>::new(),
            "2 must not read stage 0 now"
        );
        assert_eq!(settle_all(&mut s, run_all), vec![0]);
        assert_eq!(s.launch(), vec![0]);
        s.finished(0, Finish::Ran);
        assert_eq!(settle_all(&mut s, run_all), vec![1, 2]);
    }

    #[test]
    fn dry_run_marks_consumers_of_a_stage_that_would_run() {
        let mut s = scheduler(
            vec![
                node(&[], false),
                node(&[], false),
                node(&[1, 0], false),
                node(&[2], false),
            ],
            1,
        );
        let settled = settle_all(&mut s, |i| {
            if i == 0 {
                Settlement::WouldRun
            } else {
                Settlement::Cached
            }
        });
        assert_eq!(settled, vec![0, 1]);
        assert!(s.launch().is_empty());
        assert_eq!(s.end(2), Some(End::WouldRun { after: Some(0) }));
        assert_eq!(s.end(3), Some(End::WouldRun { after: Some(2) }));
        assert_eq!(s.poll(), Poll::Done);
    }

    #[test]
    fn unselected_stages_end_at_once() {
        let mut nodes = vec![node(&[], false), node(&[0], false)];
        nodes[1].selected = false;
        let mut s = scheduler(nodes, 1);
        assert_eq!(s.end(1), Some(End::NotSelected));
        assert_eq!(settle_all(&mut s, |_| Settlement::Cached), vec![0]);
        assert_eq!(s.poll(), Poll::Done);
    }

    #[test]
    fn a_cycle_is_reported_as_a_stall_not_a_hang() {
        let mut s = scheduler(vec![node(&[1], false), node(&[0], false)], 1);
        assert_eq!(s.next_to_settle(), None);
        assert_eq!(s.poll(), Poll::Stalled);
        assert_eq!(s.unfinished(), vec![0, 1]);
    }

    /// A seeded generator (splitmix64): the property test is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// A random DAG: each stage reads a few earlier ones, some use the device.
    fn random_nodes(rng: &mut Rng) -> Vec<Node> {
        let n = 1 + rng.below(12);
        (0..n)
            .map(|i| {
                let inputs = if i == 0 { 0 } else { rng.below(4) };
                let upstream: Vec<usize> = (0..inputs).map(|_| rng.below(i)).collect();
                node(&upstream, rng.chance(30))
            })
            .collect()
    }

    /// Drives a scheduler with random (seeded) settlements, finishes and a cancellation,
    /// checking the invariants after every event, and the ends at the end.
    fn simulate(seed: u64) {
        let mut rng = Rng(seed);
        let nodes = random_nodes(&mut rng);
        let n = nodes.len();
        let jobs = 1 + rng.below(3);
        let dry_run = rng.chance(15);
        let cancel_at = rng.chance(25).then(|| rng.below(3 * n + 1));
        let mut s = Scheduler::new(nodes.clone(), (0..n).collect(), jobs);
        let mut running: Vec<usize> = Vec::new();
        let mut requeued: Vec<usize> = Vec::new();
        let mut unended_at_cancel: Option<Vec<usize>> = None;
        let mut saw_damage = false;
        let ctx = |what: &str| format!("seed {seed}, {n} stages, jobs {jobs}: {what}");
        for step in 0..50 * n + 50 {
            if cancel_at == Some(step) && unended_at_cancel.is_none() {
                let waiting = (0..n)
                    .filter(|&i| s.end(i).is_none() && !running.contains(&i))
                    .collect();
                unended_at_cancel = Some(waiting);
                s.cancel();
            }
            while let Some(ready) = s.next_to_settle() {
                let i = ready.stage;
                for &u in &nodes[i].upstream {
                    let end = s.end(u);
                    assert!(end.is_some_and(End::has_result), "{}", ctx("settled early"));
                }
                let settlement = match rng.below(10) {
                    _ if ready.recompute && !dry_run => Settlement::Run,
                    0 => Settlement::Failed,
                    1..=3 => Settlement::Cached,
                    _ if dry_run => Settlement::WouldRun,
                    _ => Settlement::Run,
                };
                s.settled(i, settlement);
            }
            let launched = s.launch();
            assert!(
                launched.is_empty() || unended_at_cancel.is_none(),
                "{}",
                ctx("launched after cancelling")
            );
            assert!(
                !dry_run || launched.is_empty(),
                "{}",
                ctx("dry run launched")
            );
            for &i in &launched {
                assert!(!running.contains(&i), "{}", ctx("launched twice"));
                for &u in &nodes[i].upstream {
                    let end = s.end(u);
                    assert!(end.is_some_and(End::has_result), "{}", ctx("input missing"));
                }
                running.push(i);
            }
            let cpu = running.iter().filter(|&&i| !nodes[i].uses_device).count();
            let device = running.len() - cpu;
            assert!(cpu <= jobs, "{}", ctx("CPU slots exceeded"));
            assert!(device <= 1, "{}", ctx("two device stages at once"));
            match s.poll() {
                Poll::Done => break,
                Poll::Stalled => panic!("{}", ctx("stalled")),
                Poll::Busy => {}
            }
            assert!(!running.is_empty(), "{}", ctx("busy with nothing running"));
            let i = running.remove(rng.below(running.len()));
            let damaged = nodes[i]
                .upstream
                .iter()
                .copied()
                .find(|&u| s.end(u).is_some_and(End::has_result));
            let finish = match (rng.below(10), damaged) {
                (0, _) => Finish::Failed,
                (1, _) if unended_at_cancel.is_some() => Finish::Cancelled,
                (2 | 3, Some(upstream)) => Finish::UpstreamDamaged { upstream },
                _ => Finish::Ran,
            };
            let landing = s.finished(i, finish);
            if let Finish::UpstreamDamaged { upstream } = finish {
                saw_damage = true;
                let first = !requeued.contains(&upstream);
                if first {
                    requeued.push(upstream);
                    assert_eq!(landing, Landing::Requeued, "{}", ctx("no recompute"));
                } else {
                    assert_eq!(landing, Landing::Ended(End::Failed), "{}", ctx("again"));
                }
            }
        }
        assert_eq!(s.poll(), Poll::Done, "{}", ctx("did not finish"));
        check_ends(
            &s,
            &nodes,
            dry_run,
            unended_at_cancel.as_deref(),
            saw_damage,
            &ctx,
        );
    }

    fn check_ends(
        s: &Scheduler,
        nodes: &[Node],
        dry_run: bool,
        unended_at_cancel: Option<&[usize]>,
        saw_damage: bool,
        ctx: &dyn Fn(&str) -> String,
    ) {
        for (i, node) in nodes.iter().enumerate() {
            let end = s.end(i).expect("ended");
            if let End::Skipped { input } = end {
                assert!(
                    node.upstream.contains(&input),
                    "{}",
                    ctx("skipped by a stranger")
                );
                let input_end = s.end(input).expect("ended");
                assert!(!input_end.has_result(), "{}", ctx("skipped with its input"));
            }
            if let End::WouldRun { after: Some(u) } = end {
                assert!(
                    matches!(s.end(u), Some(End::WouldRun { .. })),
                    "{}",
                    ctx("after")
                );
            }
            if dry_run {
                assert_ne!(end, End::Ran, "{}", ctx("dry run ran"));
            }
            if unended_at_cancel.is_some_and(|w| w.contains(&i)) {
                assert_eq!(
                    end,
                    End::Cancelled,
                    "{}",
                    ctx("waiting stage not cancelled")
                );
            }
            if unended_at_cancel.is_none() && !saw_damage && !dry_run {
                // Without cancellation or recomputes: an input without a result skips.
                let failed_input = node
                    .upstream
                    .iter()
                    .any(|&u| matches!(s.end(u), Some(End::Failed | End::Skipped { .. })));
                if failed_input {
                    assert!(matches!(end, End::Skipped { .. }), "{}", ctx("not skipped"));
                }
                assert_ne!(end, End::Cancelled, "{}", ctx("cancelled uncalled"));
            }
        }
    }

    #[test]
    fn random_dags_keep_every_invariant() {
        for seed in 0..2000 {
            simulate(seed);
        }
    }
}
