"""Control flow and state: WHILE, IF, CALL_ONCE and resource variables."""


def fixtures(g):
    tf = g._import_tf() or g.tf

    def while_loop(rng):
        del rng

        def f(x0):
            i = tf.constant(0)
            _, y = tf.while_loop(lambda i, y: i < 5, lambda i, y: (i + 1, y * 0.9 + 0.1), [i, x0])
            return y

        return f

    def cond(rng):
        del rng

        def f(x0, x1):
            # x0: the bool predicate (scalar), x1: the data.
            return tf.cond(x0, lambda: x1 * 2.0, lambda: x1 - 1.0)

        return f

    def variable(rng):
        init = rng.uniform(-1, 1, size=[1, 4]).astype("float32")
        holder = tf.Module()
        holder.v = tf.Variable(init)

        def f(x0):
            holder.v.assign_add(x0)
            return holder.v.read_value() * 2.0

        f.track = holder
        return f

    return [
        g.Fixture("while_counter_f32", while_loop, [[1, 4]]),
        g.Fixture("if_bool_f32", cond, [[], [1, 4]], dtypes=("bool", "float32")),
        g.Fixture("variable_assign_add_f32", variable, [[1, 4]], resource_variables=True),
    ]
