//! Process executor: real Python scripts in the sandbox.
//!
//! Limits are generous and assertions are on error kinds, never on timings.

use idlegrid_executor::*;
use idlegrid_primitives::Duration;

fn exec() -> ProcessExecutor {
    ProcessExecutor::default()
}

fn limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(20),
        wall_time: Duration::from_secs(30),
        memory_bytes: 512 << 20,
        ..Limits::default()
    }
}

fn python_available() -> bool {
    let ok = std::path::Path::new("/usr/bin/python3").exists()
        || std::path::Path::new("/usr/local/bin/python3").exists()
        || std::path::Path::new("/bin/python3").exists();
    if !ok {
        eprintln!("SKIPPED: no python3 in /usr/local/bin, /usr/bin or /bin");
    }
    ok
}

async fn py(source: &str, input: &[u8], limits: &Limits) -> Result<Execution, ExecError> {
    exec()
        .execute(&Task::new(Program::python(source), input.to_vec()), limits)
        .await
}

#[tokio::test]
async fn computes_reads_input_and_writes_output() {
    if !python_available() {
        return;
    }
    let script = "import sys\nnums = [int(l) for l in sys.stdin]\nprint(sum(n * n for n in nums))\n\
                  print(open('input').read().count('\\n'))\nprint(open('extra.txt').read())";
    let task = Task::new(Program::python(script), b"1\n2\n3\n".to_vec())
        .with_file("extra.txt", b"hi".to_vec());
    let run = exec().execute(&task, &limits()).await.unwrap();
    assert_eq!(run.output, b"14\n3\nhi\n");
    assert_eq!(run.output_digest, output_digest(b"14\n3\nhi\n"));
    assert_eq!(run.usage.fuel, 0);
    assert_eq!(run.usage.compute_micros, run.usage.cpu_time.as_micros());
    assert_eq!(run.usage.isolation.resource_limits, Applied::Yes);
    eprintln!("isolation applied: {:?}", run.usage.isolation);
}

#[tokio::test]
async fn environment_is_cleared() {
    if !python_available() {
        return;
    }
    let script =
        "import os\nprint(' '.join(sorted(os.environ)))\nprint(os.environ['HOME'] == os.getcwd())";
    let run = py(script, b"", &limits()).await.unwrap();
    // The test process has CARGO_* and more; the script sees only these.
    // (Python itself may add LC_CTYPE when it coerces the C locale.)
    let text = String::from_utf8(run.output).unwrap();
    let mut lines = text.lines();
    let vars: Vec<&str> = lines
        .next()
        .unwrap()
        .split(' ')
        .filter(|v| *v != "LC_CTYPE")
        .collect();
    assert_eq!(vars, ["HOME", "LANG", "PATH", "PYTHONHASHSEED", "TMPDIR"]);
    assert_eq!(lines.next(), Some("True"));
}

#[tokio::test]
async fn non_zero_exit_captures_stderr() {
    if !python_available() {
        return;
    }
    let r = py(
        "import sys\nsys.stderr.write('bad things\\n')\nsys.exit(3)",
        b"",
        &limits(),
    )
    .await;
    match r {
        Err(ExecError::NonZeroExit { code: 3, stderr }) => assert_eq!(stderr, "bad things\n"),
        other => panic!("{other:?}"),
    }
    let r = py("raise ValueError('nope')", b"", &limits()).await;
    assert!(
        matches!(&r, Err(ExecError::NonZeroExit { code: 1, stderr }) if stderr.contains("ValueError: nope")),
        "{r:?}"
    );
}

#[tokio::test]
async fn sleeping_forever_is_killed_at_the_wall_limit() {
    if !python_available() {
        return;
    }
    let tight = Limits {
        wall_time: Duration::from_secs(2),
        ..limits()
    };
    let r = py("import time\nwhile True: time.sleep(1)", b"", &tight).await;
    assert_eq!(
        r,
        Err(ExecError::Timeout {
            limit: tight.wall_time
        })
    );
}

#[tokio::test]
async fn busy_loop_is_stopped_by_cpu_or_wall_limit() {
    if !python_available() {
        return;
    }
    let tight = Limits {
        cpu_time: Duration::from_secs(1),
        wall_time: Duration::from_secs(20),
        ..limits()
    };
    let r = py("while True: pass", b"", &tight).await;
    // On a loaded machine the wall clock might win; either is a kill.
    assert!(
        matches!(
            r,
            Err(ExecError::CpuTimeLimit { .. } | ExecError::Timeout { .. })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn unbounded_allocation_is_stopped() {
    if !python_available() {
        return;
    }
    let tight = Limits {
        memory_bytes: 200 << 20,
        ..limits()
    };
    let r = py(
        "xs = []\nwhile True: xs.append(bytearray(1 << 20))",
        b"",
        &tight,
    )
    .await;
    assert_eq!(
        r,
        Err(ExecError::MemoryLimit {
            limit_bytes: 200 << 20
        })
    );
}

#[tokio::test]
async fn fork_bomb_is_contained_and_nothing_survives() {
    if !python_available() {
        return;
    }
    if !exec().drops_privileges() {
        eprintln!("SKIPPED: not root, so RLIMIT_NPROC counts all of this user's processes");
        return;
    }
    let tight = Limits {
        processes: 16,
        ..limits()
    };
    // Children park in sleep; the parent forks until refused, then reports.
    let script = "import os, time\nn = 0\nwhile n < 10000:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(600)\n        os._exit(0)\n    n += 1\nprint(n)";
    let program = Program::Script {
        interpreter: "python3".into(),
        args: vec!["-I".into()],
        file_name: "forkbomb_marker.py".into(),
        source: script.into(),
    };
    let run = exec()
        .execute(&Task::new(program, vec![]), &tight)
        .await
        .unwrap();
    let forks: u64 = String::from_utf8(run.output)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(forks < 16, "forked {forks} times");
    // Every child was killed before execute returned.
    let survivors = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains("forkbomb_marker.py"))
        .count();
    assert_eq!(survivors, 0);
}

#[tokio::test]
async fn network_is_unreachable_when_isolated() {
    if !python_available() {
        return;
    }
    let script = "import socket\ns = socket.socket()\ns.settimeout(3)\n\
                  try:\n    s.connect(('1.1.1.1', 80))\n    print('connected')\n\
                  except OSError as e:\n    print('blocked', e.errno)";
    let run = py(script, b"", &limits()).await.unwrap();
    let text = String::from_utf8(run.output).unwrap();
    match run.usage.isolation.network {
        Applied::Yes => assert!(text.starts_with("blocked"), "{text}"),
        other => {
            eprintln!("SKIPPED: no network namespace on this host ({other:?}); script said {text}")
        }
    }
    // Policy `Require` refuses instead of running unisolated.
    let strict = ProcessExecutor::new(ProcessConfig {
        network: NetworkPolicy::Require,
        ..ProcessConfig::default()
    });
    let r = strict
        .execute(&Task::new(Program::python("print(1)"), vec![]), &limits())
        .await;
    match run.usage.isolation.network {
        Applied::Yes => assert!(r.is_ok(), "{r:?}"),
        _ => assert!(
            matches!(r, Err(ExecError::IsolationUnavailable(_))),
            "{r:?}"
        ),
    }
}

#[tokio::test]
async fn private_files_outside_the_directory_are_denied() {
    if !python_available() {
        return;
    }
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, b"top secret").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&secret).unwrap().permissions(),
        0o600,
    );
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let script = format!(
        "try:\n    print(open({:?}).read())\nexcept OSError as e:\n    print('denied', e.errno)",
        secret.display().to_string()
    );
    let run = py(&script, b"", &limits()).await.unwrap();
    let text = String::from_utf8(run.output).unwrap();
    match run.usage.isolation.unprivileged_user {
        Applied::Yes => assert!(text.starts_with("denied"), "{text}"),
        other => eprintln!("SKIPPED: not root, no sandbox user ({other:?}); script said {text}"),
    }
}

#[tokio::test]
async fn huge_output_is_cut_off() {
    if !python_available() {
        return;
    }
    let tight = Limits {
        output_bytes: 1 << 20,
        ..limits()
    };
    // Would print gigabytes.
    let r = py(
        "import sys\nwhile True: sys.stdout.write('x' * 65536)",
        b"",
        &tight,
    )
    .await;
    assert_eq!(
        r,
        Err(ExecError::OutputTooLarge {
            limit_bytes: 1 << 20
        })
    );
    // Huge stderr is truncated, not fatal.
    let tight = Limits {
        stderr_bytes: 1000,
        ..limits()
    };
    let r = py(
        "import sys\nsys.stderr.write('e' * 5_000_000)\nsys.exit(2)",
        b"",
        &tight,
    )
    .await;
    match r {
        Err(ExecError::NonZeroExit { code: 2, stderr }) => assert_eq!(stderr.len(), 1000),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn huge_file_is_stopped() {
    if !python_available() {
        return;
    }
    let tight = Limits {
        file_bytes: 1 << 20,
        ..limits()
    };
    let r = py(
        "with open('big', 'wb') as f:\n    while True: f.write(b'x' * 65536)",
        b"",
        &tight,
    )
    .await;
    assert_eq!(
        r,
        Err(ExecError::FileSizeLimit {
            limit_bytes: 1 << 20
        })
    );
}

#[tokio::test]
async fn binary_output_passes_through() {
    if !python_available() {
        return;
    }
    let run = py(
        "import sys\nsys.stdout.buffer.write(bytes(range(256)))",
        b"",
        &limits(),
    )
    .await
    .unwrap();
    assert_eq!(run.output, (0..=255u8).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_programs_and_inputs_are_typed_errors() {
    let e = exec();
    let l = limits();
    let run = |t: Task| {
        let e = e.clone();
        async move { e.execute(&t, &l).await }
    };
    assert!(matches!(
        run(Task::new(Program::python("  \n"), vec![])).await,
        Err(ExecError::BadProgram(_))
    ));
    let missing = Program::Script {
        interpreter: "no-such-interpreter".into(),
        args: vec![],
        file_name: "s.py".into(),
        source: b"print(1)".to_vec(),
    };
    assert!(matches!(
        run(Task::new(missing, vec![])).await,
        Err(ExecError::BadProgram(_))
    ));
    let relative = Program::Script {
        interpreter: "../python3".into(),
        args: vec![],
        file_name: "s.py".into(),
        source: b"print(1)".to_vec(),
    };
    assert!(matches!(
        run(Task::new(relative, vec![])).await,
        Err(ExecError::BadProgram(_))
    ));
    for name in ["../escape", "/etc/passwd", "", "input", "script.py"] {
        let t = Task::new(Program::python("print(1)"), vec![]).with_file(name, b"x".to_vec());
        assert!(
            matches!(run(t).await, Err(ExecError::BadInput(_))),
            "{name}"
        );
    }
    let tight = Limits {
        input_bytes: 4,
        ..l
    };
    let r = e
        .execute(&Task::new(Program::python("print(1)"), vec![0; 5]), &tight)
        .await;
    assert_eq!(r, Err(ExecError::InputTooLarge { len: 5, max: 4 }));
    let wasm = Task::new(Program::wasm(b"(module)".to_vec()), vec![]);
    assert_eq!(
        run(wasm).await,
        Err(ExecError::UnsupportedKind {
            kind: ExecutorKind::Wasm
        })
    );
}

#[tokio::test]
async fn task_directories_are_removed() {
    if !python_available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let e = ProcessExecutor::new(ProcessConfig {
        temp_root: Some(root.path().to_path_buf()),
        ..ProcessConfig::default()
    });
    let ok = e
        .execute(
            &Task::new(Program::python("open('scratch', 'w').write('x')"), vec![]),
            &limits(),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let failed = e
        .execute(
            &Task::new(Program::python("raise SystemExit(1)"), vec![]),
            &limits(),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn daemonized_children_do_not_survive() {
    if !python_available() {
        return;
    }
    if !exec().drops_privileges() {
        eprintln!("SKIPPED: not root, no sandbox user to sweep");
        return;
    }
    // The child leaves the process group and keeps stdout open.
    let script = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(600)\nelse:\n    print('parent done')";
    let program = Program::Script {
        interpreter: "python3".into(),
        args: vec!["-I".into()],
        file_name: "daemon_marker.py".into(),
        source: script.into(),
    };
    let run = exec()
        .execute(&Task::new(program, vec![]), &limits())
        .await
        .unwrap();
    assert_eq!(run.output, b"parent done\n");
    let survivors = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains("daemon_marker.py"))
        .count();
    assert_eq!(survivors, 0);
}

#[tokio::test]
async fn world_readable_files_outside_the_directory_are_denied_by_landlock() {
    if !python_available() {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let public = outside.path().join("public");
    std::fs::write(&public, b"public data").unwrap();
    std::fs::set_permissions(&public, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        outside.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let script = format!(
        "try:\n    print(open({:?}).read())\nexcept OSError as e:\n    print('denied', e.errno)\n\
         open('own', 'w').write('mine')\nprint(open('own').read())",
        public.display().to_string()
    );
    let run = py(&script, b"", &limits()).await.unwrap();
    let text = String::from_utf8(run.output).unwrap();
    match run.usage.isolation.filesystem {
        Applied::Yes => assert_eq!(text, "denied 13\nmine\n"),
        other => eprintln!("SKIPPED: no Landlock on this host ({other:?}); script said {text}"),
    }
}
