//! TEMPORARY: the live-reload branch brings the real `Control`; this keeps the command task
//! compiling meanwhile.

use std::sync::{Arc, Mutex};

use crate::config::Config;

#[derive(Clone, Debug)]
pub struct Control {
    running: Arc<Mutex<Arc<Config>>>,
}

#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub live: Vec<String>,
    pub at_restart: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the agent is busy applying another configuration")]
    Busy,
    #[error("the agent is stopping")]
    Stopped,
}

impl Control {
    pub fn new(config: Config) -> Control {
        Control {
            running: Arc::new(Mutex::new(Arc::new(config))),
        }
    }

    pub async fn apply(&self, new: Config) -> Result<Applied, ApplyError> {
        *self.running.lock().unwrap() = Arc::new(new);
        Ok(Applied {
            live: Vec::new(),
            at_restart: vec!["everything".to_owned()],
        })
    }

    pub fn running(&self) -> Arc<Config> {
        Arc::clone(&self.running.lock().unwrap())
    }
}
