//! Test fixture: a structurally sound plugin library whose initialiser (run
//! by the dynamic loader, before any plugin code is called) aborts the
//! process. Only a load in a child process can survive it: the host must
//! refuse it with the reason and keep running.

use export_plugin_api::{export_plugin, Plugin, PluginBuilder};

/// Runs when the library is mapped (`.init_array`), like a C constructor.
extern "C" fn abort_on_load() {
    std::process::abort();
}

#[used]
#[unsafe(link_section = ".init_array")]
static ABORT_ON_LOAD: extern "C" fn() = abort_on_load;

fn plugin() -> Plugin {
    PluginBuilder::new("crash-on-load", env!("CARGO_PKG_VERSION"))
        .description("Aborts whatever process loads it")
        .build()
}

export_plugin!(plugin());
