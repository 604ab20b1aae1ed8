pub mod evaluate;
pub mod merge;
pub mod predict;
pub mod prepare;
pub mod report;
pub mod run;
pub mod synth;
pub mod train;
