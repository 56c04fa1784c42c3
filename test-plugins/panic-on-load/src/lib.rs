//! Test fixture: building the plugin panics, so loading it must fail cleanly.

use export_plugin_api::{export_plugin, Plugin};

fn plugin() -> Plugin {
    panic!("boom while building the plugin")
}

export_plugin!(plugin());
