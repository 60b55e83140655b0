# Renders the project's templates with the values of
# conf/distro/include/makespacelive-layout.inc: in every file named in
# MAKESPACELIVE_TEMPLATES as "SOURCE:DESTINATION" (both in UNPACKDIR), each @@NAME@@ of
# MAKESPACELIVE_TEMPLATE_VARS becomes that variable's value. An unknown or unset name
# fails the task. Runs after do_unpack, from the pristine template every time, and the
# values are in do_unpack's signature: a changed value re-renders.

MAKESPACELIVE_TEMPLATES ??= ""

python makespacelive_render_templates() {
    import re
    names = set(d.getVar('MAKESPACELIVE_TEMPLATE_VARS').split())
    unpackdir = d.getVar('UNPACKDIR')

    for pair in d.getVar('MAKESPACELIVE_TEMPLATES').split():
        source, _, destination = pair.partition(':')

        def value(match):
            name = match.group(1)
            if name not in names:
                bb.fatal('%s: @@%s@@ is not one of MAKESPACELIVE_TEMPLATE_VARS' % (source, name))
            text = d.getVar(name)
            if text is None:
                bb.fatal('%s: @@%s@@ is not set' % (source, name))
            return text

        with open(os.path.join(unpackdir, source)) as f:
            rendered = re.sub(r'@@([A-Za-z0-9_]+)@@', value, f.read())
        with open(os.path.join(unpackdir, destination), 'w') as f:
            f.write(rendered)
}
makespacelive_render_templates[doc] = "Renders MAKESPACELIVE_TEMPLATES with the layout values"
makespacelive_render_templates[vardeps] += "MAKESPACELIVE_TEMPLATES ${MAKESPACELIVE_TEMPLATE_VARS}"
do_unpack[postfuncs] += "makespacelive_render_templates"
