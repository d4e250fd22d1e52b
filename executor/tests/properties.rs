//! Properties of the public types, using the crate's own strategies.

use idlegrid_executor::*;
use idlegrid_primitives::{Seed, decode, encode};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Tasks, limits and executions survive canonical encoding (they cross
    /// the wire and get committed to).
    #[test]
    fn canonical_round_trips(task in strategies::task(), limits in strategies::limits(),
                             exec in strategies::execution(), b in strategies::behaviour()) {
        prop_assert_eq!(decode::<Task>(&encode(&task), 1 << 20).unwrap(), task.clone());
        prop_assert_eq!(decode::<Limits>(&encode(&limits), 1 << 10).unwrap(), limits);
        prop_assert_eq!(decode::<Execution>(&encode(&exec), 1 << 20).unwrap(), exec.clone());
        prop_assert_eq!(decode::<Behaviour>(&encode(&b), 64).unwrap(), b);
        prop_assert!(check_execution(&exec).is_ok());
        let mut forged = exec;
        forged.output.push(0);
        prop_assert!(check_execution(&forged).is_err());
    }

    /// Any task, any limits, any behaviour: the wasm and simulated executors
    /// return a value or a typed error, never panic; simulation is
    /// reproducible.
    #[test]
    fn arbitrary_tasks_never_panic(task in strategies::task(), limits in strategies::limits(),
                                   b in strategies::behaviour(), cost in strategies::cost_model(),
                                   seed in idlegrid_primitives::strategies::seed()) {
        let _ = WasmExecutor::default().run(&task, &limits);
        let run = |s: Seed| SimulatedExecutor::new(b, cost, s).run(&task, &limits, SimContext::default());
        let (x, y) = (run(seed), run(seed));
        prop_assert_eq!(&x, &y);
        if let Ok(o) = x {
            prop_assert_eq!(o.correct, o.execution.output == reference_output(&task));
        }
    }
}
