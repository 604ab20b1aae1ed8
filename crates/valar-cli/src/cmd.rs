pub mod audit;
pub mod evaluate;
pub mod predict;
pub mod prepare;
pub mod report;
pub mod run;
pub mod synth;
pub mod train;
