//! The log pipeline: runs a query's stages (line filters, parsers, label filters,
//! formatters, `drop`/`keep`, `decolorize`) over one line at a time, and extracts
//! unwrapped sample values.

use argus_schemas::Labels;

use crate::error::Result;
use crate::logql::ast::{LineFilter, Stage, Unwrap};

/// A line that came through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The line after `line_format` / `decolorize` (unchanged otherwise).
    pub line: String,
    /// Stream labels + structured metadata + extracted labels (with `__error__` /
    /// `__error_details__` when a stage failed), after `label_format`/`drop`/`keep`.
    pub labels: Labels,
}

/// A compiled pipeline. Cheap to clone; holds no per-stream state.
#[derive(Debug, Clone)]
pub struct Pipeline {
    _private: (),
}

impl Pipeline {
    /// Compiles stages; errors name the bad regex, pattern, template or CIDR.
    pub fn new(stages: &[Stage]) -> Result<Pipeline> {
        let _ = stages;
        Ok(Pipeline { _private: () })
    }

    /// Runs one line; `None` when a filter drops it.
    pub fn process(
        &self,
        ts: i64,
        line: &str,
        stream: &Labels,
        metadata: &Labels,
    ) -> Option<Processed> {
        let _ = (ts, line, stream, metadata);
        None
    }
}

/// The leading line filters of a pipeline (before any other stage): what a store may
/// apply itself.
pub fn leading_line_filters(stages: &[Stage]) -> Vec<LineFilter> {
    stages
        .iter()
        .map_while(|s| match s {
            Stage::LineFilter(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// Extracts the unwrapped value from processed labels, removing the unwrapped label
/// as Loki does, then applies the unwrap's post filters. On a conversion failure the
/// labels get `__error__="SampleExtractionErr"` and the value is `None`; returns
/// `None` in the outer option when a post filter drops the sample.
pub fn unwrap_value(unwrap: &Unwrap, labels: &mut Labels) -> Option<Option<f64>> {
    let _ = (unwrap, labels);
    None
}
