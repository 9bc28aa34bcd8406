//! A camera as the ingest tests configure it: the loader's defaults, no credentials, no zones
//! or lines.

use std::time::Duration;

use watchpost::config::CameraConfig;

/// Camera `name` at `url` as the loader makes it from `name` and `url` alone, torn down after
/// `stall_timeout` without a frame.
pub fn camera_config(name: &str, url: String, stall_timeout: Duration) -> CameraConfig {
    let text = format!(
        "[device]\nsite = \"north\"\nid = \"box-1\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\n\
         [[cameras]]\nname = \"{name}\"\nurl = \"{url}\"\n"
    );
    let camera = super::parse_config(&text).cameras.remove(0);
    CameraConfig {
        stall_timeout,
        ..camera
    }
}
