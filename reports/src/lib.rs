//! Results model and reports.
