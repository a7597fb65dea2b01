//! `datatrust-bench log`: the transparency log's load generator. It measures, on the disk
//! given (or a temporary directory):
//!
//! 1. durable appends per second from `--callers` appends in flight, and each append's time
//!    until the callback that reports it in a signed, committed checkpoint (p50, p99);
//! 2. the raw baseline: the same bytes inserted into sled in batches of the same average size
//!    as the log's, each batch flushed, and the ratio of the two;
//! 3. inclusion proofs per second at the final tree size, on one thread and on all cores,
//!    every hundredth one verified.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use datatrust_core::NoteSigner;
use datatrust_store::SledStore;
use datatrust_tlog::proof::verify_inclusion;
use datatrust_tlog::{Sequencer, SequencerOptions, leaf_hash};
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;

use crate::BenchCommand;

pub fn run(command: BenchCommand, json_output: bool) -> anyhow::Result<()> {
    let BenchCommand::Log {
        entries,
        callers,
        entry_bytes,
        proofs,
        dir,
    } = command
    else {
        unreachable!("the ingest benchmark is dispatched separately");
    };
    anyhow::ensure!(
        entries > 0 && callers > 0 && entry_bytes > 0,
        "--entries, --callers and --entry-bytes must be positive"
    );
    anyhow::ensure!(
        entry_bytes <= 65_535,
        "--entry-bytes: a log entry is at most 65535 bytes"
    );
    let temporary = tempfile::tempdir_in(dir.clone().unwrap_or_else(std::env::temp_dir))
        .context("creating the benchmark directory")?;
    let root: PathBuf = temporary.path().to_path_buf();
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; figures mean little. Use cargo run --release -p datatrust-bench -- log"
        );
    }

    // 1. Durable appends through the sequencer.
    let store = SledStore::open(&root.join("log"), rand::random())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let log_store = Arc::new(
        store
            .log_store()
            .map_err(|error| anyhow::anyhow!("{error}"))?,
    );
    let signer = NoteSigner::new("bench.datatrust.localhost", rand::random())?;
    let sequencer = Sequencer::open(log_store, signer.clone(), SequencerOptions::default())?;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(entries as usize)));
    let in_flight = Arc::new((Mutex::new(0usize), Condvar::new()));
    let checkpoints_before = sequencer.reader().latest().checkpoint.size;
    let mut payload = vec![0u8; entry_bytes];
    let started = Instant::now();
    for index in 0..entries {
        {
            let (count, changed) = &*in_flight;
            let mut count = count.lock().expect("counter poisoned");
            while *count >= callers {
                count = changed.wait(count).expect("counter poisoned");
            }
            *count += 1;
        }
        // Distinct entries, as real ones are (they carry times and commitments).
        payload[..8].copy_from_slice(&index.to_be_bytes());
        let submitted = Instant::now();
        let latencies = Arc::clone(&latencies);
        let in_flight = Arc::clone(&in_flight);
        sequencer.append(payload.clone(), move |outcome| {
            let elapsed = submitted.elapsed();
            let appended = outcome.expect("a benchmark append failed");
            latencies
                .lock()
                .expect("latencies poisoned")
                .push((elapsed, appended.checkpoint.checkpoint.size));
            let (count, changed) = &*in_flight;
            *count.lock().expect("counter poisoned") -= 1;
            changed.notify_one();
        });
    }
    {
        let (count, changed) = &*in_flight;
        let mut count = count.lock().expect("counter poisoned");
        while *count > 0 {
            count = changed.wait(count).expect("counter poisoned");
        }
    }
    let append_seconds = started.elapsed().as_secs_f64();
    let appends_per_second = entries as f64 / append_seconds;
    let recorded = std::mem::take(&mut *latencies.lock().expect("latencies poisoned"));
    // Each commit signs one checkpoint; its size identifies it.
    let mut checkpoint_sizes: Vec<u64> = recorded.iter().map(|(_, size)| *size).collect();
    checkpoint_sizes.sort_unstable();
    checkpoint_sizes.dedup();
    let batches = checkpoint_sizes.len() as u64;
    let mut latencies: Vec<Duration> = recorded.into_iter().map(|(latency, _)| latency).collect();
    latencies.sort_unstable();
    let percentile = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
    let (p50, p99) = (percentile(0.50), percentile(0.99));
    let reader = Arc::clone(sequencer.reader());
    let size = reader.size();
    anyhow::ensure!(
        size == checkpoints_before + entries,
        "the log holds {size} entries, expected {entries}"
    );

    // 2. Raw baseline: sled batched insert + flush of the same bytes, same batch size.
    let batch_size = (entries / batches.max(1)).max(1);
    let raw = sled::Config::new()
        .path(root.join("raw"))
        .flush_every_ms(Some(500))
        .open()?;
    let raw_tree = raw.open_tree("raw")?;
    let raw_started = Instant::now();
    let mut written = 0u64;
    while written < entries {
        let mut batch = sled::Batch::default();
        let end = (written + batch_size).min(entries);
        for index in written..end {
            payload[..8].copy_from_slice(&index.to_be_bytes());
            batch.insert(&index.to_be_bytes(), payload.as_slice());
        }
        raw_tree.apply_batch(batch)?;
        raw.flush()?;
        written = end;
    }
    let raw_per_second = entries as f64 / raw_started.elapsed().as_secs_f64();

    // 3. Inclusion proofs at the final size.
    let proof_rate = |threads: usize| -> anyhow::Result<f64> {
        let per_thread = (proofs / threads as u64).max(1);
        let started = Instant::now();
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let handles: Vec<_> = (0..threads)
                .map(|thread| {
                    let reader = Arc::clone(&reader);
                    let root = reader.latest().checkpoint.root;
                    scope.spawn(move || -> anyhow::Result<()> {
                        let mut random = rand::rngs::StdRng::seed_from_u64(thread as u64);
                        for count in 0..per_thread {
                            let index = random.gen_range(0..size);
                            let proof = reader.inclusion_proof(index, size)?;
                            if count % 100 == 0 {
                                let entry = reader.entries(index, index + 1)?.remove(0);
                                verify_inclusion(index, size, &leaf_hash(&entry), &proof, &root)?;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("proof thread panicked")?;
            }
            Ok(())
        })?;
        Ok((per_thread * threads as u64) as f64 / started.elapsed().as_secs_f64())
    };
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let proofs_one_thread = proof_rate(1)?;
    let proofs_all_cores = proof_rate(cores)?;
    sequencer.close();

    if json_output {
        println!(
            "{}",
            json!({
                "entries": entries,
                "entry_bytes": entry_bytes,
                "callers": callers,
                "durable_appends_per_second": appends_per_second.round(),
                "append_to_checkpoint_p50_ms": p50.as_secs_f64() * 1e3,
                "append_to_checkpoint_p99_ms": p99.as_secs_f64() * 1e3,
                "batches": batches,
                "raw_sled_batched_inserts_per_second": raw_per_second.round(),
                "ratio_to_raw": appends_per_second / raw_per_second,
                "tree_size": size,
                "inclusion_proofs_per_second_one_thread": proofs_one_thread.round(),
                "inclusion_proofs_per_second_all_cores": proofs_all_cores.round(),
                "cores": cores,
            })
        );
    } else {
        println!(
            "datatrust-bench log: {entries} entries of {entry_bytes} bytes, {callers} appends in flight, disk at {}",
            root.display()
        );
        println!(
            "  durable appends:           {appends_per_second:>12.0} /s   ({batches} batches, {append_seconds:.2} s)"
        );
        println!(
            "  append to checkpoint:      p50 {:>7.1} ms   p99 {:>7.1} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        println!(
            "  raw sled batch+flush:      {raw_per_second:>12.0} /s   (batches of {batch_size})"
        );
        println!(
            "  ratio log / raw:           {:>12.2}",
            appends_per_second / raw_per_second
        );
        println!(
            "  inclusion proofs at {size}: {proofs_one_thread:>10.0} /s on 1 thread, {proofs_all_cores:.0} /s on {cores} threads"
        );
    }
    Ok(())
}
