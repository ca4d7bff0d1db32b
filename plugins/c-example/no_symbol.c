/* A shared library that is not a keelson plugin: it exports a function, but not keelson_plugin_v1.
 * Hosts must refuse it with "missing symbol keelson_plugin_v1". */
int keelson_not_a_plugin(int x) { return x + 1; }
