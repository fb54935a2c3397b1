//! Route lookup benchmarks for `PathTree`: REST-style tables of 10, 100 and
//! 1,000 routes, each measuring a static path, a one-parameter path and a
//! miss.

use std::hint::black_box;

use aiox_web::router::PathTree;
use criterion::Criterion;

/// The first `n` routes of an endless REST-style API: five routes per
/// resource, a mix of static and `{id}` routes.
fn routes(n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    while out.len() < n {
        for pattern in [
            format!("/api/v1/res{k}"),
            format!("/api/v1/res{k}/{{id}}"),
            format!("/api/v1/res{k}/search"),
            format!("/api/v1/res{k}/{{id}}/items"),
            format!("/api/v1/res{k}/{{id}}/items/{{item}}"),
        ] {
            if out.len() < n {
                out.push(pattern);
            }
        }
        k += 1;
    }
    out
}

fn bench_lookups(c: &mut Criterion) {
    for n in [10usize, 100, 1_000] {
        let patterns = routes(n);
        let mut tree = PathTree::new();
        for (i, pattern) in patterns.iter().enumerate() {
            if let Err(e) = tree.insert(pattern, i) {
                panic!("{e}");
            }
        }
        // A resource in the middle of the table.
        let k = n / 5 / 2;
        let static_path = format!("/api/v1/res{k}/search");
        let param_path = format!("/api/v1/res{k}/12345");
        let miss_path = format!("/api/v1/res{k}/12345/unknown");

        let found = |path: &str| tree.find(path).map(|m| patterns[*m.value].as_str());
        assert_eq!(found(&static_path), Some(static_path.as_str()));
        assert_eq!(
            found(&param_path),
            Some(format!("/api/v1/res{k}/{{id}}").as_str())
        );
        assert_eq!(found(&miss_path), None);

        let mut group = c.benchmark_group(format!("routes_{n}"));
        group.bench_function("static", |b| {
            b.iter(|| tree.find(black_box(static_path.as_str())).map(|m| *m.value))
        });
        group.bench_function("param", |b| {
            b.iter(|| {
                tree.find(black_box(param_path.as_str()))
                    .and_then(|m| m.params.get("id").map(str::len))
            })
        });
        group.bench_function("miss", |b| {
            b.iter(|| tree.find(black_box(miss_path.as_str())).map(|m| *m.value))
        });
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_lookups(&mut c);
    c.final_summary();
}
