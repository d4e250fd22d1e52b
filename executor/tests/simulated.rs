//! Simulated executor: cost model and seeded cheating behaviours.

use idlegrid_executor::*;
use idlegrid_primitives::Seed;

fn tasks(n: usize) -> Vec<Task> {
    (0..n)
        .map(|i| {
            Task::new(
                Program::python("print(input())"),
                format!("{i}\n").into_bytes(),
            )
        })
        .collect()
}

fn provider(behaviour: Behaviour, seed: u64) -> SimulatedExecutor {
    SimulatedExecutor::new(behaviour, CostModel::default(), Seed::from_u64(seed))
}

/// Fraction (per mille) of tasks with a wrong output.
fn wrong_per_mille(p: &SimulatedExecutor, tasks: &[Task], is_trap: bool) -> usize {
    let wrong = tasks
        .iter()
        .filter(|t| {
            !p.run(t, &Limits::default(), SimContext { is_trap })
                .unwrap()
                .correct
        })
        .count();
    wrong * 1000 / tasks.len()
}

#[tokio::test]
async fn honest_returns_the_reference_at_model_cost() {
    let p = SimulatedExecutor::honest(Seed::from_u64(1));
    for t in tasks(50) {
        let run = p.execute(&t, &Limits::default()).await.unwrap();
        assert_eq!(run.output, reference_output(&t));
        assert_eq!(run.usage.wall_time, CostModel::default().duration(&t));
        assert_eq!(run.usage.isolation, Isolation::SIMULATED);
    }
    assert_eq!(p.executed(), 50);
}

#[test]
fn lazy_cheater_cheats_at_its_rate_cheaply_and_reproducibly() {
    let ts = tasks(4000);
    let p = provider(
        Behaviour::LazyCheater {
            rate: Rate::percent(30),
        },
        2,
    );
    let rate = wrong_per_mille(&p, &ts, false);
    assert!((270..=330).contains(&rate), "{rate}");
    // Same seed, same choices; another seed, other choices.
    let a = provider(
        Behaviour::LazyCheater {
            rate: Rate::percent(30),
        },
        2,
    );
    let b = provider(
        Behaviour::LazyCheater {
            rate: Rate::percent(30),
        },
        2,
    );
    let c = provider(
        Behaviour::LazyCheater {
            rate: Rate::percent(30),
        },
        3,
    );
    let run = |p: &SimulatedExecutor| -> Vec<_> {
        ts[..200]
            .iter()
            .map(|t| p.run(t, &Limits::default(), SimContext::default()).unwrap())
            .collect()
    };
    let (ra, rb, rc) = (run(&a), run(&b), run(&c));
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
    // A cheat is cheap, plausible (same length) and flagged for the simulator.
    let cheat = ra.iter().find(|o| o.cheated).unwrap();
    let honest = ra.iter().find(|o| !o.cheated).unwrap();
    assert!(cheat.execution.usage.wall_time < honest.execution.usage.wall_time);
    assert_eq!(cheat.execution.output.len(), honest.execution.output.len());
    assert!(!cheat.correct);
}

#[test]
fn faults_corrupt_at_their_rate_without_cheating() {
    let ts = tasks(4000);
    let p = provider(
        Behaviour::Faulty {
            rate: Rate::percent(10),
        },
        4,
    );
    let outs: Vec<_> = ts
        .iter()
        .map(|t| p.run(t, &Limits::default(), SimContext::default()).unwrap())
        .collect();
    let wrong = outs.iter().filter(|o| !o.correct).count() * 1000 / outs.len();
    assert!((80..=120).contains(&wrong), "{wrong}");
    assert!(outs.iter().all(|o| !o.cheated));
}

#[test]
fn trap_guessing_depends_on_accuracy() {
    let ts = tasks(4000);
    // A perfect guesser never cheats on traps and always on real tasks.
    let perfect = Behaviour::TrapGuessing {
        rate: Rate::ALWAYS,
        accuracy: Rate::ALWAYS,
    };
    assert_eq!(wrong_per_mille(&provider(perfect, 5), &ts, true), 0);
    assert_eq!(wrong_per_mille(&provider(perfect, 5), &ts, false), 1000);
    // Traps indistinguishable from real tasks: a coin flip.
    let blind = Behaviour::TrapGuessing {
        rate: Rate::ALWAYS,
        accuracy: Rate::percent(50),
    };
    let on_traps = wrong_per_mille(&provider(blind, 6), &ts, true);
    assert!((450..=550).contains(&on_traps), "{on_traps}");
    // 80 % accurate, cheating on 50 % of believed-real tasks: 10 % of traps.
    let good = Behaviour::TrapGuessing {
        rate: Rate::percent(50),
        accuracy: Rate::percent(80),
    };
    let on_traps = wrong_per_mille(&provider(good, 7), &ts, true);
    assert!((75..=125).contains(&on_traps), "{on_traps}");
}

#[test]
fn colluders_return_the_same_wrong_answer() {
    let ts = tasks(1000);
    let b = Behaviour::Colluding {
        group: 9,
        rate: Rate::percent(40),
    };
    // Different members: different seeds, same group.
    let (m1, m2) = (provider(b, 10), provider(b, 11));
    let mut wrong = 0;
    for t in &ts {
        let o1 = m1
            .run(t, &Limits::default(), SimContext::default())
            .unwrap();
        let o2 = m2
            .run(t, &Limits::default(), SimContext::default())
            .unwrap();
        assert_eq!(o1.execution.output, o2.execution.output);
        if !o1.correct {
            wrong += 1;
        }
    }
    assert!((350..=450).contains(&wrong), "{wrong}");
    // Another group gives a different wrong answer.
    let other = provider(
        Behaviour::Colluding {
            group: 10,
            rate: Rate::ALWAYS,
        },
        12,
    );
    let mine = provider(
        Behaviour::Colluding {
            group: 9,
            rate: Rate::ALWAYS,
        },
        12,
    );
    let t = &ts[0];
    assert_ne!(
        other
            .run(t, &Limits::default(), SimContext::default())
            .unwrap()
            .execution
            .output,
        mine.run(t, &Limits::default(), SimContext::default())
            .unwrap()
            .execution
            .output
    );
}

#[test]
fn bait_and_switch_is_honest_then_cheats() {
    let ts = tasks(2100);
    let p = provider(
        Behaviour::BaitAndSwitch {
            honest_tasks: 100,
            rate: Rate::percent(50),
        },
        13,
    );
    let outs: Vec<_> = ts
        .iter()
        .map(|t| p.run(t, &Limits::default(), SimContext::default()).unwrap())
        .collect();
    assert!(outs[..100].iter().all(|o| o.correct));
    let later = outs[100..].iter().filter(|o| o.cheated).count() * 1000 / 2000;
    assert!((450..=550).contains(&later), "{later}");
}

#[test]
fn input_limit_applies() {
    let p = SimulatedExecutor::honest(Seed::from_u64(1));
    let t = Task::new(Program::python("x"), vec![0; 100]);
    let l = Limits {
        input_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        p.run(&t, &l, SimContext::default()),
        Err(ExecError::InputTooLarge { len: 100, max: 10 })
    );
}
